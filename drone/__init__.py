"""haulwatch.drone"""
