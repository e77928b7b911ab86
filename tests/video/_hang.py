"""Probing workers that misbehave: one hangs on files whose name contains "hang" (for the index's hard time limit
test), one exits after its first answer. They live in their own module so spawned worker processes can import them."""

import time

from sf2t.video import index


def worker(conn, verify, timeout):
    while True:
        path = conn.recv()
        if path is None:
            return
        if "hang" in path:
            time.sleep(3600)  # a decoder stuck in C code: only killing the process ends it
        conn.send(index._entry(path, verify, timeout))


def answer_once(conn, verify, timeout):
    """A worker that answers its first file, then exits (as one that crashes in a decoder's cleanup after its answer):
    the next file sent to it meets a closed pipe."""
    path = conn.recv()
    conn.send({"path": path, "status": "ok"})
    conn.close()
