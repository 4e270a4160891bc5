"""haulwatch.ingest"""
