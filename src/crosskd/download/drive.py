"""Google Drive links: the direct-download URL of a file id and the "can't scan for viruses" confirm step.

For large files Drive answers the download URL with an HTML page whose form (or link) carries
a confirm token; the real file comes from the URL that form submits to.
"""

from __future__ import annotations

import html.parser
import re
import urllib.error
import urllib.parse
import urllib.request

from crosskd.download.http import DownloadError, network_error, open_url

DRIVE_BASE_URL = "https://drive.google.com"
PAGE_LIMIT = 1 << 20


def drive_download_url(file_id: str, base: str = DRIVE_BASE_URL) -> str:
    """The direct-download URL of a Drive file id."""
    return f"{base.rstrip('/')}/uc?export=download&id={urllib.parse.quote(file_id)}"


class _FormParser(html.parser.HTMLParser):
    """Collects the download form's action and hidden inputs, and any link carrying confirm=."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.confirm_link: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form" and self.action is None:
            self.action = values.get("action")
        elif tag == "input" and values.get("type") == "hidden" and values.get("name"):
            self.fields[values["name"]] = values.get("value", "")
        elif tag == "a" and "confirm=" in values.get("href", "") and self.confirm_link is None:
            self.confirm_link = values["href"]


def confirm_url(page: str, page_url: str) -> str | None:
    """The URL a Drive confirm page leads to, or None when the page offers no download."""
    parser = _FormParser()
    parser.feed(page)
    if parser.action and "confirm" in parser.fields:
        query = urllib.parse.urlencode(parser.fields)
        return f"{urllib.parse.urljoin(page_url, parser.action)}?{query}"
    if parser.confirm_link:
        return urllib.parse.urljoin(page_url, parser.confirm_link)
    token = re.search(r"confirm=([0-9A-Za-z_-]+)", page)
    if token:
        separator = "&" if "?" in page_url else "?"
        return f"{page_url}{separator}confirm={token.group(1)}"
    return None


def resolve_download(url: str, opener: urllib.request.OpenerDirector, *,
                     timeout: float = 60.0) -> str:
    """The URL that serves the file itself: `url`, or where Drive's confirm page points."""
    try:
        with open_url(url, opener, timeout=timeout) as response:
            if not response.headers.get_content_type().startswith("text/html"):
                return url
            page = response.read(PAGE_LIMIT).decode("utf-8", errors="replace")
            page_url = response.geturl()
    except (urllib.error.URLError, OSError) as err:
        raise network_error(url, err) from None
    target = confirm_url(page, page_url)
    if target is None:
        raise DownloadError(f"GET {url} returned a web page without a download (Drive quota "
                            "exceeded or access denied); open the URL in a browser and try "
                            "again later")
    return target
