-- GpuMemoryTransfer.side: "api" (the CPU-side cuMemcpy* call, uprobes) or "device" (CUPTI activity).
ALTER TABLE gpu_transfers ADD COLUMN side String DEFAULT ''
