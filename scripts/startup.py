"""Start-up time (exec to the port line on stdout) and idle memory of the plugin binary."""
import subprocess, time, statistics, sys
b = sys.argv[1]
ts=[]; rss=[]
for _ in range(10):
    t0=time.perf_counter()
    p=subprocess.Popen([b, "127.0.0.1:1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdout.readline(); ts.append(time.perf_counter()-t0)
    time.sleep(0.5)
    for line in open(f"/proc/{p.pid}/status"):
        if line.startswith("VmRSS"): rss.append(int(line.split()[1]))
    p.terminate(); p.wait()
print(f"start-up to port line: median {statistics.median(ts)*1000:.1f} ms (min {min(ts)*1000:.1f}); idle RSS median {statistics.median(rss)/1024:.1f} MiB")
