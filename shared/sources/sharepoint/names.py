"""What names and paths a SharePoint library can hold: `check_path` refuses the others
(InvalidName) before any request is sent, so that a name SharePoint would refuse is a per-file
failure with a plain reason, not a Graph error."""
from __future__ import annotations

from shared import errors

_INVALID_CHARS = set('"*:<>?\\|\0')
_RESERVED = {".lock", "con", "prn", "aux", "nul", "desktop.ini",
             *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}
MAX_PATH = 400  # decoded characters


def check_path(path: str, for_write: bool = False) -> str:
    """Refuse what is not a library-relative path SharePoint can hold (InvalidName)."""
    parts = path.split("/") if isinstance(path, str) else [""]
    for part in parts:
        why = None
        if part in ("", ".", ".."):
            why = "not a relative '/'-separated path"
        elif _INVALID_CHARS & set(part) or part != part.strip():
            why = f"SharePoint names cannot hold {''.join(sorted(_INVALID_CHARS - {chr(0)}))}" \
                  " or spaces at their ends"
        elif for_write and (part.lower() in _RESERVED or part.split(".")[0].lower() in _RESERVED
                            or part.startswith("~$") or "_vti_" in part.lower()):
            why = f"{part!r} is a name SharePoint reserves"
        if why:
            raise errors.InvalidName(f"{why}: {path!r}", path)
    if for_write and len(path) > MAX_PATH:
        raise errors.InvalidName(f"SharePoint paths are at most {MAX_PATH} characters", path)
    return path
