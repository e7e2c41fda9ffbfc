"""Image intake for the API: ``image_file`` > ``image_base64`` > ``image_url``, with SSRF-safe downloads.

``image_url`` is fetched with httpx under a total time limit and the image byte cap. The host is resolved
here, every resolved address is checked (loopback, private, link-local, multicast, reserved, unspecified,
shared and cloud-metadata addresses are refused unless ``allow_private_urls``), and the connection goes to
the checked address (Host header and TLS SNI carry the name), so a DNS answer that changes between check
and connect cannot redirect the download. Redirects are followed by hand, each hop checked again.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
import time
from dataclasses import dataclass

import httpx

from faceplus.api.errors import ApiError
from faceplus.api.forms import Params

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata endpoints (most are also link-local/shared; listed so a setting change cannot expose them).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


@dataclass(frozen=True)
class ImageInput:
    data: bytes
    param: str  # the field it came from, for Face++ error strings


def is_public_address(ip: IpAddress) -> bool:
    """True only for globally routable unicast addresses that are not cloud metadata endpoints."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in METADATA_ADDRESSES:
        return False
    return ip.is_global and not (
        ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def resolve(host: str, port: int) -> list[IpAddress]:
    """Every address ``host`` resolves to (an IP literal resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, IpAddress] = {}
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = str(sockaddr[0]).split("%")[0]
            seen.setdefault(address, ipaddress.ip_address(address))
    return list(seen.values())


class UrlFetcher:
    """Download an image URL under the server's limits."""

    def __init__(self, timeout_s: float, max_bytes: int, max_redirects: int = 3, allow_private: bool = False) -> None:
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allow_private = allow_private

    def fetch(self, url: str, param: str = "image_url") -> bytes:
        invalid = ApiError(400, f"INVALID_IMAGE_URL: {param}")
        deadline = time.monotonic() + self.timeout_s
        with httpx.Client(trust_env=False, follow_redirects=False) as client:
            for _ in range(self.max_redirects + 1):
                try:
                    target = httpx.URL(url)
                except (httpx.InvalidURL, TypeError, ValueError):
                    raise invalid from None
                if target.scheme not in ("http", "https") or not target.host:
                    raise invalid
                port = target.port or (443 if target.scheme == "https" else 80)
                try:
                    addresses = resolve(target.host, port)
                except (OSError, UnicodeError, ValueError):
                    raise invalid from None
                if not addresses:
                    raise invalid
                if not self.allow_private and not all(is_public_address(a) for a in addresses):
                    raise invalid
                response = self._get(client, target, addresses[0], deadline, param)
                if response is None:
                    raise invalid
                if isinstance(response, str):
                    url = str(target.join(response))
                    continue
                return response
        raise invalid

    def _get(
        self, client: httpx.Client, target: httpx.URL, address: IpAddress, deadline: float, param: str
    ) -> bytes | str | None:
        """The body, a redirect location (str), or None for a failed fetch."""
        pinned = target.copy_with(host=str(address))
        headers = {"Host": target.netloc.decode("ascii"), "Accept": "image/*"}
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ApiError(412, "IMAGE_DOWNLOAD_TIMEOUT")
        try:
            with client.stream(
                "GET", pinned, headers=headers, extensions=extensions, timeout=httpx.Timeout(remaining)
            ) as response:
                if response.is_redirect:
                    return response.headers.get("location") or None
                if response.status_code != 200:
                    return None
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise ApiError(400, f"IMAGE_FILE_TOO_LARGE: {param}")
                    if time.monotonic() > deadline:
                        raise ApiError(412, "IMAGE_DOWNLOAD_TIMEOUT")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException:
            raise ApiError(412, "IMAGE_DOWNLOAD_TIMEOUT") from None
        except httpx.HTTPError:
            return None


def _base64(text: str, param: str) -> bytes:
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"IMAGE_ERROR_UNSUPPORTED_FORMAT: {param}") from None


def image_names(suffix: str = "") -> tuple[str, str, str]:
    """(file, base64, url) field names; compare uses ``image_file1``, ``image_base64_1``, ``image_url1``."""
    return f"image_file{suffix}", f"image_base64{'_' + suffix if suffix else ''}", f"image_url{suffix}"


def read_image(params: Params, fetcher: UrlFetcher, suffix: str = "") -> ImageInput | None:
    """The image a request carries (file wins over base64, base64 over URL), or None when it has none."""
    file_name, b64_name, url_name = image_names(suffix)
    data = params.file(file_name)
    if data is not None:
        return ImageInput(data, file_name)
    text = params.str(file_name)
    if text is not None:  # sent as a text field, not an upload
        raise ApiError(400, f"IMAGE_ERROR_UNSUPPORTED_FORMAT: {file_name}")
    b64_alias = f"image_base64{suffix}"
    for name in (b64_name, b64_alias) if suffix else (b64_name,):
        text = params.str(name)
        if text is not None:
            return ImageInput(_base64(text, name), name)
    url = params.str(url_name)
    if url is not None:
        return ImageInput(fetcher.fetch(url.strip(), url_name), url_name)
    return None
