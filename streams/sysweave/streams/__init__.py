"""sysweave.streams"""
