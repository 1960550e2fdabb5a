/// Index maths for Quiver: k-means, product quantization, anisotropic code assignment, 4-bit FastScan, IVF with SOAR spilling, top-k, flat search. No I/O, no networking.
