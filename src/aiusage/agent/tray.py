"""Optional tray icon (pystray) where a desktop session exists; headless otherwise."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

log = logging.getLogger("aiusage.agent")


def start_tray(status: Callable[[], str], on_quit: Callable[[], None]) -> bool:
    """Show a tray icon with a status line and Quit; False when no desktop/pystray is there.

    pystray (the ``tray`` extra) needs a display: on a server or in CI the agent runs headless.
    """
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.name == "nt"):
        return False
    try:
        import pystray
        from PIL import Image, ImageDraw
    except ImportError:
        log.info("agent.tray_unavailable install the 'tray' extra for a tray icon")
        return False
    image = Image.new("RGB", (64, 64), (32, 96, 200))
    ImageDraw.Draw(image).ellipse((16, 16, 48, 48), fill=(255, 255, 255))

    def quit_(icon: pystray.Icon, _item: object) -> None:
        on_quit()
        icon.stop()

    menu = pystray.Menu(
        pystray.MenuItem(lambda _item: status(), None, enabled=False),
        pystray.MenuItem("Quit", quit_),
    )
    icon = pystray.Icon("aiusage-agent", image, "aiusage agent", menu)
    threading.Thread(target=icon.run, daemon=True).start()
    return True
