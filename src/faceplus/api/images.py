"""Image intake for the API: ``image_file`` > ``image_base64`` > ``image_url``, with SSRF-safe downloads.

``image_url`` is fetched with httpx under a total time limit and the image byte cap. The host is resolved
here, every resolved address is checked (loopback, private, link-local, multicast, reserved, unspecified,
shared, cloud-metadata and IPv6 addresses wrapping any of those (IPv4-mapped, 6to4, Teredo, NAT64) are
refused unless ``allow_private_urls``; name resolution counts against the download time), and the
connection goes to the checked address (Host header and TLS SNI carry the name), so a DNS answer that
changes between check and connect cannot redirect the download. Redirects are followed by hand, each hop checked again.

The byte cap counts the bytes that arrive, not what they decode to: the request asks for ``identity`` and a reply
with any other ``Content-Encoding`` is refused before its body is read (a 2 kB gzip-in-gzip body inflates to
gigabytes in one decoder call, before any cap on decoded bytes could look at it).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import socket
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import httpx

from faceplus.api.errors import ApiError
from faceplus.api.fields import Field

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata endpoints (most are also link-local/shared; listed so a setting change cannot expose them).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "192.0.0.192", "fd00:ec2::254")
)
#: Non-global ranges refused whatever the Python version's ``is_global`` says (IANA special-purpose registries).
NOT_GLOBAL = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible ::a.b.c.d
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): the translator is inside the network
        "100::/64",
        "2001::/23",  # discard-only; IETF protocol assignments, Teredo (2001::/32) among them
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)
#: Well-known NAT64 prefix (RFC 6052): the last 32 bits are the IPv4 address the translator connects to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Concurrent DNS look-ups (each in its own thread so a request can stop waiting at its deadline).
_RESOLVERS = threading.BoundedSemaphore(32)


@dataclass(frozen=True)
class ImageInput:
    data: bytes
    param: str  # the field it came from, for Face++ error strings


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries to the wire: IPv4-mapped, 6to4, Teredo's client, NAT64."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address (Python undoes the obfuscation)
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IpAddress) -> bool:
    """True only for globally routable unicast addresses that are not cloud metadata endpoints.

    An IPv6 address that wraps an IPv4 one (mapped, 6to4, Teredo, NAT64) must be public on both counts, so
    ``2002:7f00:1::`` (6to4 around 127.0.0.1) or ``64:ff9b::a00:1`` (NAT64 to 10.0.0.1) are refused.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None and not is_public_address(inner):
            return False
        if inner is not None and (ip.ipv4_mapped is not None or ip in _NAT64):
            return True  # the IPv4 address is what gets connected to, and it passed
    if ip in METADATA_ADDRESSES or any(ip in net for net in NOT_GLOBAL if net.version == ip.version):
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


def resolve_before(host: str, port: int, deadline: float) -> list[IpAddress]:
    """:func:`resolve` within the download's deadline (412 IMAGE_DOWNLOAD_TIMEOUT past it).

    getaddrinfo cannot be cancelled, so it runs in a daemon thread that is abandoned at the deadline; at
    most 32 run at once, so a slow resolver cannot pile up threads.
    """
    timeout = ApiError(412, "IMAGE_DOWNLOAD_TIMEOUT")
    if not _RESOLVERS.acquire(timeout=max(0.0, deadline - time.monotonic())):
        raise timeout
    outcome: list[list[IpAddress] | BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(resolve(host, port))
        except BaseException as exc:  # handed to the caller
            outcome.append(exc)
        finally:
            _RESOLVERS.release()
            done.set()

    threading.Thread(target=run, name="faceplus-resolve", daemon=True).start()
    if not done.wait(max(0.0, deadline - time.monotonic())):
        raise timeout
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


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
                    addresses = resolve_before(target.host, port, deadline)
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
        headers = {"Host": target.netloc.decode("ascii"), "Accept": "image/*", "Accept-Encoding": "identity"}
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
                if response.status_code != 200 or not identity_encoded(response.headers):
                    return None
                if declared_length(response.headers) > self.max_bytes:
                    raise ApiError(400, f"IMAGE_FILE_TOO_LARGE: {param}")
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_raw():  # the bytes as sent: nothing is inflated
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


def identity_encoded(headers: httpx.Headers) -> bool:
    """Whether a reply's body is sent as is (no ``Content-Encoding``, or only ``identity``)."""
    codings = [c.strip().lower() for value in headers.get_list("content-encoding") for c in value.split(",")]
    return all(c in ("", "identity") for c in codings)


def declared_length(headers: httpx.Headers) -> int:
    """The ``Content-Length`` a reply announces (0 when absent or unreadable: the streamed count still applies)."""
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


def _base64(text: str, param: str) -> bytes:
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(400, f"IMAGE_ERROR_UNSUPPORTED_FORMAT: {param}") from None


class FieldReader(Protocol):
    """What :func:`read_image` reads of a request's form (:class:`faceplus.api.forms.Params` is one), named here so
    that image intake, which services use too, carries no web framework."""

    def file(self, field: Field) -> bytes | None: ...

    def text(self, field: Field) -> str | None: ...


@dataclass(frozen=True)
class ImageFields:
    """The fields one image may come in (file wins over base64, base64 over URL), declared once for the route's
    form and for :func:`read_image`; ``aliases``: other spellings of the base64 field, read but not documented."""

    file: Field
    base64: Field
    url: Field
    aliases: tuple[Field, ...] = ()

    @property
    def declared(self) -> tuple[Field, Field, Field]:
        """The documented fields, for a route's :class:`~faceplus.api.forms.Form`."""
        return self.file, self.base64, self.url


def image_fields(suffix: str = "") -> ImageFields:
    """The image fields, or one compare side's: ``image_file1``, ``image_base64_1`` (also ``image_base641``, the
    numbered field without its underscore, as the other numbered fields are spelled) and ``image_url1``."""
    if not suffix:
        return ImageFields(Field("image_file", "binary"), Field("image_base64"), Field("image_url"))
    return ImageFields(
        Field(f"image_file{suffix}", "binary"),
        Field(f"image_base64_{suffix}"),
        Field(f"image_url{suffix}"),
        (Field(f"image_base64{suffix}"),),
    )


#: The image of detect, search, thousandlandmark and the FaceAlbum.
IMAGE = image_fields()


def read_image(params: FieldReader, fetcher: UrlFetcher, fields: ImageFields = IMAGE) -> ImageInput | None:
    """The image a request carries in ``fields`` (file wins over base64, base64 over URL), or None when it has none."""
    data = params.file(fields.file)
    if data is not None:
        return ImageInput(data, fields.file.name)
    if params.text(fields.file) is not None:  # sent as a text field, not an upload
        raise ApiError(400, f"IMAGE_ERROR_UNSUPPORTED_FORMAT: {fields.file.name}")
    for field in (fields.base64, *fields.aliases):
        text = params.text(field)
        if text is not None:
            return ImageInput(_base64(text, field.name), field.name)
    url = params.text(fields.url)
    if url is not None:
        return ImageInput(fetcher.fetch(url.strip(), fields.url.name), fields.url.name)
    return None
