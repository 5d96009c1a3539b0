"""sysweave.agents"""
