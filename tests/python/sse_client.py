"""Reads an SSE stream with Python's standard library (http.client), parsing events as the
WHATWG algorithm does, until the response ends or COUNT events arrived; prints them as JSON.

    python3 sse_client.py HOST PORT PATH COUNT [LAST_EVENT_ID]
"""

import http.client
import json
import sys


def main():
    host, port, path, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if len(sys.argv) > 5:
        headers["Last-Event-ID"] = sys.argv[5]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    result = {
        "status": response.status,
        "content_type": response.getheader("content-type"),
        "retry": None,
        "events": [],
    }
    data, event_type, last_id = [], "", ""
    while len(result["events"]) < count:
        raw = response.readline()
        if not raw:
            break
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line == "":
            if data:
                result["events"].append(
                    {"id": last_id, "type": event_type or "message", "data": "\n".join(data)}
                )
            data, event_type = [], ""
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event_type = value
        elif name == "id" and "\0" not in value:
            last_id = value
        elif name == "retry" and value.isdigit():
            result["retry"] = int(value)
    connection.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
