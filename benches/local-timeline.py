#!/usr/bin/env python3
"""Where the wall time of a `dbuild local` run went, per worker.

Usage: benches/local-timeline.py STATE_DIR [BUILD_ID]

Reads the workers' logs (<state-dir>/logs/local-N.log: "building",
"build succeeded/failed" and "reported" lines) and the phases line of each
package's build log, and prints for each worker: its span (first lease to
last report), the time in jobs split into rpmbuild, BuildRequires install
and the rest (chroot, sources, publish), the report round trips (the reply
carries the next lease) and the idle time between a report and the next
build; then the tail, how long the last worker ran after the first finished.
A package prepared ahead (during the slot's previous build) did its
install before its job began: that install is shown apart ("ahead"), and
whatever of it was still running when the job began is in "rest".
"""
import glob
import os
import re
import sys
from datetime import datetime


def stamp(line):
    return datetime.strptime(line[:26], "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def build_phases(build_dir):
    phases = {}
    for log in glob.glob(os.path.join(build_dir, "stage/LOGS/*/*.log")):
        package = os.path.basename(os.path.dirname(log))
        with open(log, errors="replace") as f:
            for line in f:
                m = re.search(r"phases: (.*)", line)
                if m:
                    phases.setdefault(package, {}).update({k: float(v) for k, v in re.findall(r"([a-z]+) ([0-9.]+)s", m.group(1))})
                if "prepared while the slot's previous build ran" in line:
                    phases.setdefault(package, {})["ahead"] = 1.0
    return phases


def worker_events(log):
    events = []
    with open(log) as f:
        for line in f:
            if " building " in line:
                events.append(("build", stamp(line), re.search(r"package=(\S+)", line).group(1)))
            elif "build succeeded" in line or "build failed" in line:
                events.append(("built", stamp(line), None))
            elif " reported " in line:
                events.append(("reported", stamp(line), None))
    return events


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    state = sys.argv[1]
    build_id = sys.argv[2] if len(sys.argv) > 2 else "local"
    phases = build_phases(os.path.join(state, build_id))
    starts, ends = [], []
    for log in sorted(glob.glob(os.path.join(state, "logs/local-*.log"))):
        events = worker_events(log)
        if not events:
            continue
        starts.append(events[0][1])
        ends.append(events[-1][1])
        job = report = idle = rpmbuild = install = ahead = 0.0
        prepared_ahead = 0
        previous = None
        began, package = 0.0, None
        for kind, at, name in events:
            if kind == "build":
                if previous and previous[0] == "reported":
                    idle += at - previous[1]
                began, package = at, name
            elif kind == "built":
                job += at - began
                p = phases.get(package, {})
                rpmbuild += p.get("rpmbuild", 0.0)
                if p.get("ahead"):
                    prepared_ahead += 1
                    ahead += p.get("install", 0.0)
                else:
                    install += p.get("install", 0.0)
            elif kind == "reported" and previous:
                report += at - previous[1]
            previous = (kind, at)
        print(
            f"{os.path.basename(log)}: span {ends[-1] - starts[-1]:.3f}s job {job:.3f}s "
            f"(rpmbuild {rpmbuild:.3f} install {install:.3f} rest {job - rpmbuild - install:.3f}) "
            f"report {report:.3f}s idle {idle:.3f}s; {prepared_ahead} prepared ahead (install {ahead:.3f}s)"
        )
    if starts:
        print(f"all: span {max(ends) - min(starts):.3f}s; tail (after the first worker finished) {max(ends) - min(ends):.3f}s")


if __name__ == "__main__":
    main()
