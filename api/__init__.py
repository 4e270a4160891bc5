"""haulwatch.api"""
