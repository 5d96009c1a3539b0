"""The sysweave command line."""
