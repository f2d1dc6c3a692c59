"""The regional reading queue: every study from every site, its state, turnaround clock and reader lock."""
