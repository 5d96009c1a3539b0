"""sysweave.validator"""
