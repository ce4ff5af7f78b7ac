"""Where the export folder lives: inotify cannot see writes made on another machine, so
`watch.method: auto` polls network filesystems (per /proc/self/mountinfo)."""

from __future__ import annotations

import os
from pathlib import Path

from invoice_mailer.config.model import WatchConfig

MOUNTINFO = "/proc/self/mountinfo"
# Filesystems whose files can change on another machine, where inotify sees nothing.
NETWORK_FILESYSTEMS = frozenset(
    {
        "cifs", "smb3", "smbfs", "nfs", "nfs4", "9p", "afs", "ceph", "glusterfs", "davfs",
        "lustre", "gpfs", "beegfs", "ocfs2", "gfs2", "coda", "ncpfs", "vboxsf", "virtiofs",
        "vmhgfs", "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse", "fuse.glusterfs",
        "fuse.ceph-fuse", "fuse.cephfs", "fuse.davfs", "fuse.davfs2", "fuse.smbnetfs",
        "fuse.curlftpfs", "fuse.gvfsd-fuse", "fuse.vmhgfs-fuse", "fuse.juicefs",
        "fuse.blobfuse", "fuse.blobfuse2", "fuse.goofys",
    }
)  # fmt: skip


def choose_method(config: WatchConfig, mountinfo_text: str | None = None) -> tuple[str, str]:
    """("events" | "polling", reason): inotify cannot see writes made on another machine.

    `auto` polls when the folder is on a network filesystem per /proc/self/mountinfo (or the
    given text); the reason is a sentence for the log.
    """
    folder = str(config.folder)
    if config.method in ("events", "polling"):
        return config.method, f"{config.method}: set by watch.method"
    if mountinfo_text is None:
        try:
            mountinfo_text = Path(MOUNTINFO).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            return "events", f"events: cannot read {MOUNTINFO} ({exc.strerror}); assuming local"
    fstype = _filesystem_of(os.path.realpath(folder), mountinfo_text)
    if fstype is None:
        return "events", f"events: no mount found for {folder} in {MOUNTINFO}"
    if fstype in NETWORK_FILESYSTEMS:
        return "polling", f"polling: {folder} is on {fstype} (network filesystem)"
    return "events", f"events: {folder} is on {fstype}"


def _filesystem_of(path: str, mountinfo_text: str) -> str | None:
    """The type of the mount holding `path`: the longest mount point that contains it."""
    best: tuple[int, str] | None = None
    for line in mountinfo_text.splitlines():
        left, dash, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not dash or len(fields) < 5 or not tail:
            continue
        point = _unescape(fields[4])
        inside = point == "/" or path == point or path.startswith(point.rstrip("/") + "/")
        # `>=`: a later line with the same mount point is mounted on top of the earlier one.
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), tail[0])
    return best[1] if best else None


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040 …)."""
    for code in ("040", "011", "012", "134"):
        field = field.replace("\\" + code, chr(int(code, 8)))
    return field
