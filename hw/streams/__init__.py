"""Stream plumbing between kernels: FIFOs, forks, width converters, the word layouts."""
