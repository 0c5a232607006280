"""A router's helper: started once per router namespace of a lane (harness/router.ts, as
`nsenter --net=<router> -- python3 -I -S routerd.py CONNTRACK`), it resets the router for every try and
snapshots it on request without starting a process: the ruleset goes in through libnftables (the
library nft itself is), the conntrack table is emptied with one ctnetlink message (what `conntrack -F`
sends). On this class of machine starting any process costs ~5 ms of CPU, and a reset took four.

One request per line on stdin, fields separated by tabs; one answer line per request on stdout, in order:
  ID  reset     FILE         load FILE (it starts with `flush ruleset`), then empty the conntrack table
  ID  snapshot  NFT  CT      the ruleset into NFT, `conntrack -L` into CT (evidence: a process is fine)
  -> ID ok   or   ID err MESSAGE (one line)
Its first line says whether it can work here: `ready`, or `unavailable<TAB>why` (then it exits and the
harness resets with a process per step). It exits when stdin closes.
"""
import ctypes
import os
import socket
import struct
import subprocess
import sys

NETLINK_NETFILTER = 12
NFNL_SUBSYS_CTNETLINK = 1
IPCTNL_MSG_CT_DELETE = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


class Nft:
    def __init__(self):
        lib = ctypes.CDLL("libnftables.so.1")
        lib.nft_ctx_new.restype = ctypes.c_void_p
        lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
        for name in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_int
        for name in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
            getattr(lib, name).restype = ctypes.c_char_p
        lib.nft_run_cmd_from_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_filename.restype = ctypes.c_int
        lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
        self.lib = lib
        self.ctx = lib.nft_ctx_new(0)
        if not self.ctx:
            raise OSError("nft_ctx_new failed")
        lib.nft_ctx_buffer_output(self.ctx)
        lib.nft_ctx_buffer_error(self.ctx)

    def _result(self, rc):
        out = (self.lib.nft_ctx_get_output_buffer(self.ctx) or b"").decode("utf-8", "replace")
        err = (self.lib.nft_ctx_get_error_buffer(self.ctx) or b"").decode("utf-8", "replace")
        if rc != 0:
            raise OSError(err.strip() or f"nft failed ({rc})")
        return out

    def load(self, path):
        return self._result(self.lib.nft_run_cmd_from_filename(self.ctx, path.encode()))

    def run(self, cmd):
        return self._result(self.lib.nft_run_cmd_from_buffer(self.ctx, cmd.encode()))


class Conntrack:
    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.seq = 0

    def flush(self):
        """Every family's entries (AF_UNSPEC), as `conntrack -F`; waits for the kernel's ack."""
        self.seq += 1
        nfgen = struct.pack("!BBH", socket.AF_UNSPEC, 0, 0)
        hdr = struct.pack("=IHHII", 16 + len(nfgen), (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST | NLM_F_ACK, self.seq, 0)
        self.sock.send(hdr + nfgen)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                length, kind, _flags, seq, _pid = struct.unpack_from("=IHHII", data, off)
                if kind == NLMSG_ERROR and seq == self.seq:
                    (code,) = struct.unpack_from("=i", data, off + 16)
                    if code != 0:
                        raise OSError(-code, f"conntrack flush: {os.strerror(-code)}")
                    return
                off += (length + 3) & ~3 if length else len(data)


def main():
    conntrack_bin = sys.argv[1]
    try:
        nft, ct = Nft(), Conntrack()
    except Exception as e:  # no libnftables, no ctnetlink: the harness does without this helper
        print(f"unavailable\t{e}".replace("\n", " "), flush=True)
        return
    print("ready", flush=True)
    for line in sys.stdin:
        fields = line.rstrip("\n").split("\t")
        rid, verb, args = fields[0], fields[1] if len(fields) > 1 else "", fields[2:]
        try:
            if verb == "reset" and len(args) == 1:
                nft.load(args[0])
                ct.flush()
            elif verb == "snapshot" and len(args) == 2:
                try:
                    text = nft.run("list ruleset")
                except OSError as e:
                    text = f"could not read: {e}\n"
                with open(args[0], "w") as f:
                    f.write(text)
                with open(args[1], "w") as f:
                    r = subprocess.run([conntrack_bin, "-L"], stdout=f, stderr=subprocess.DEVNULL)
                    if r.returncode != 0:
                        f.write(f"could not read: conntrack -L exited {r.returncode}\n")
            else:
                raise ValueError(f"bad request: {line.strip()!r}")
            answer = f"{rid}\tok"
        except Exception as e:
            answer = f"{rid}\terr\t{e}".replace("\n", " | ")
        print(answer, flush=True)


main()
