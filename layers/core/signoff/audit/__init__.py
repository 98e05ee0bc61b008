"""The audit trail: hash-chained events, how a change appends them, the archive record format and the archiver."""
