## bench-video: N pion WHEP viewers (separate process) on one 2 Mbps 30 fps camera through the relay, loopback.
## Prints gateway CPU, per-viewer loss and latency for N = 1 (baseline), 50, 100, 200, 400.
bench-video:
	$(GO) run ./bench/video -n 1,50,100,200,400 -duration 10s
