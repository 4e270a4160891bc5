"""haulwatch.geo"""
