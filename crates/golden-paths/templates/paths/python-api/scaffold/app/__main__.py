import os
import signal

from app import logger, make_server


def main():
    port = int(os.environ.get("PORT", "8080"))
    server = make_server(port=port)
    # Stop at once on SIGTERM: requests are short and the server keeps no state.
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    logger().info("listening", extra={"fields": {"port": port}})
    server.serve_forever()


if __name__ == "__main__":
    main()
