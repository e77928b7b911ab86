"""A probing worker that hangs on files whose name contains "hang" (for the index's hard time limit test).
Lives in its own module so spawned worker processes can import it."""

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
