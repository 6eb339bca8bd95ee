"""Audit files are readable by the service's own user only (0600), whatever the umask."""

from __future__ import annotations

import os
from pathlib import Path


def restrict_mode(path: Path) -> None:
    """chmod 600 an existing file of ours (an earlier version may have left it 0644); a file
    owned by someone else is left alone, and a missing one is fine."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    if st.st_mode & 0o077 and st.st_uid == os.geteuid():
        os.chmod(path, 0o600)


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (then only restrict it)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        restrict_mode(path)
        return
    os.close(fd)
