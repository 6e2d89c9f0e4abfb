#!/usr/bin/env python3
"""A volunteer's app for OneKey's tests, on paho-mqtt (not on OneKey's code): connects with a
stable client id and a persistent session (clean session off), subscribes to the responder's task
topic with QoS 1, reconnects by itself when the broker goes away, prints every message it gets as
one JSON line on stdout, and confirms each on the receipt topic unless --no-receipts.

Usage: app.py --broker host:port --prefix P --responder ID --client-id C [--no-receipts]
Prints {"ready": true} once subscribed (and again after every reconnect).
"""

import argparse
import json
import sys

import paho.mqtt.client as mqtt


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--broker", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--responder", required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--no-receipts", action="store_true")
    a = p.parse_args()
    host, port = a.broker.rsplit(":", 1)
    tasks = f"{a.prefix}/responder/{a.responder}/tasks"
    receipt = f"{a.prefix}/responder/{a.responder}/receipt"

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=a.client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    if a.username:
        client.username_pw_set(a.username, a.password)
    client.reconnect_delay_set(min_delay=1, max_delay=2)

    def on_connect(c, userdata, flags, reason, props):
        c.subscribe(tasks, qos=1)

    def on_subscribe(c, userdata, mid, reasons, props):
        print(json.dumps({"ready": True}), flush=True)

    def on_message(c, userdata, msg):
        try:
            body = json.loads(msg.payload)
        except ValueError:
            body = {"unparsed": msg.payload.decode("utf-8", "replace")}
        print(json.dumps({"topic": msg.topic, "message": body}), flush=True)
        if not a.no_receipts and isinstance(body, dict) and "id" in body:
            c.publish(receipt, json.dumps({"ids": [body["id"]]}), qos=1)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.connect_async(host, int(port), keepalive=10)
    try:
        client.loop_forever(retry_first_connection=True)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
