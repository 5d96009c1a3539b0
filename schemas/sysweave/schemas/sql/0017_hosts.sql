-- The capture backend that observed each host (HostInfo.backend): where a trace's "backend" comes from.
ALTER TABLE hosts ADD COLUMN backend String
