"""Container health check: exits 0 when /health answers 200."""

import os
import sys
import urllib.request


def main():
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8080')}/health"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            sys.exit(0 if response.status == 200 else 1)
    except OSError:
        sys.exit(1)


if __name__ == "__main__":
    main()
