"""haulwatch.routes"""
