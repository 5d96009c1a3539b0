-- GpuKernel.side: "api" (the CPU-side cuLaunchKernel call, uprobes) or "device" (CUPTI activity).
ALTER TABLE gpu_kernels ADD COLUMN side String DEFAULT ''
