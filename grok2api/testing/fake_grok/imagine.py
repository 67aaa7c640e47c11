"""The fake's imagine WebSocket (protocol §5.1).

Each ``input_text``/``input_scroll`` request gets ``num_generations`` slots (4 when the
client does not say): ``start_stage`` → a PNG preview (33 %) → a medium JPEG (66 %) →
the final JPEG (100 %) → ``completed``. Odd slots send ``completed`` before their final
picture, as the real one sometimes does. A prompt with ``[moderate]`` gets moderated
slots (no final picture), one with ``[moderate-first]`` only its first slot moderated.
Blob sizes follow the preview/medium/final bands clients have used to classify
pictures. Faults: ``imagine_error`` answers the first round with an error frame,
``imagine_error_mid`` sends an error frame after ``after_lines`` frames of it,
``imagine_drop`` closes the socket there.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import orjson
from aiohttp import WSMsgType, web

from grok2api.testing.fake_grok.faults import Fault, FaultKind
from grok2api.testing.fake_grok.media import jpeg, png
from grok2api.testing.fake_grok.replies import MODERATE_MARKER, StoredAsset

DEFAULT_SLOTS = 4
MODERATE_FIRST_MARKER = "[moderate-first]"
_SIZES = {"2:3": (832, 1248), "3:2": (1248, 832), "1:1": (1024, 1024), "16:9": (1280, 720), "9:16": (720, 1280)}
#: (percentage, extension, bytes): base64 sizes land at ~20 000, ~60 000 and ~107 000
_PICTURES = ((33, "png", 15_000), (66, "jpg", 45_000), (100, "jpg", 80_000))


def _round(prompt: str, properties: dict[str, Any], request_id: str,
           assets_url: str) -> tuple[list[dict[str, Any]], list[StoredAsset]]:
    count = properties.get("num_generations")
    count = count if isinstance(count, int) and 1 <= count <= 10 else DEFAULT_SLOTS
    width, height = _SIZES.get(str(properties.get("aspect_ratio")), _SIZES["2:3"])
    frames: list[dict[str, Any]] = []
    assets: list[StoredAsset] = []
    for order in range(count):
        moderated = MODERATE_MARKER in prompt or (order == 0 and MODERATE_FIRST_MARKER in prompt)
        image_id = str(uuid4())
        common = {"request_id": request_id, "order": order, "width": width, "height": height}
        frames.append({"type": "json", "current_status": "start_stage", "image_id": image_id, **common})
        pictures = []
        for percentage, extension, size in _PICTURES:
            path = f"imagine-public/images/{image_id}.{extension}"
            data = (png if extension == "png" else jpeg)(path, size)
            if percentage < 100 or not moderated:
                assets.append(StoredAsset(image_id, path, f"image/{'png' if extension == 'png' else 'jpeg'}",
                                          data, owner=None, listed=False))
                pictures.append({"type": "image", "id": image_id, "url": f"{assets_url}/{path}",
                                 "blob": base64.b64encode(data).decode(), "percentage_complete": percentage,
                                 **common})
        done = {"type": "json", "current_status": "completed", "image_id": image_id,
                "moderated": moderated, "r_rated": False, **common}
        if order % 2 and not moderated:
            frames += [*pictures[:-1], done, pictures[-1]]
        else:
            frames += [*pictures, done]
    return frames, assets


async def serve_imagine(ws: web.WebSocketResponse, messages: list[Any], faults: list[Fault],
                        assets_url: str, store: Callable[[list[StoredAsset]], None],
                        close_after_round: bool, frame_delay: float = 0.0) -> None:
    """Answer requests until the client leaves (or after one round when asked to);
    ``faults`` are this socket's (see the module docstring), each spoiling one round;
    ``frame_delay`` paces the frames."""
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        try:
            data = orjson.loads(message.data)
        except orjson.JSONDecodeError:
            continue
        messages.append(data)
        item = data.get("item") if isinstance(data, dict) else None
        content = item.get("content") if isinstance(item, dict) else None
        request = content[0] if isinstance(content, list) and content and isinstance(content[0], dict) else {}
        if request.get("type") not in ("input_text", "input_scroll"):
            continue  # resets and pings
        fault = faults.pop() if faults else None
        if fault is not None and fault.kind == FaultKind.IMAGINE_ERROR:
            await _send(ws, {"type": "error", "err_code": "rate_limit_exceeded",
                             "err_msg": fault.message or "Too many requests"})
        else:
            properties = request.get("properties")
            frames, assets = _round(str(request.get("text") or ""), properties if isinstance(properties, dict) else {},
                                    str(request.get("requestId") or ""), assets_url)
            store(assets)
            if fault is not None:
                frames = frames[:fault.after_lines]
            for frame in frames:
                if frame_delay:
                    await asyncio.sleep(frame_delay)
                await _send(ws, frame)
            if fault is not None and fault.kind == FaultKind.IMAGINE_ERROR_MID:
                await _send(ws, {"type": "error", "err_code": "internal_error",
                                 "err_msg": fault.message or "Image generation failed"})
            elif fault is not None:
                break  # imagine_drop
        if close_after_round:
            break
    await ws.close()


async def _send(ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
    await ws.send_str(orjson.dumps(frame).decode())
