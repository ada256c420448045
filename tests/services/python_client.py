#!/usr/bin/python3
"""A Python gRPC client of llama.v1, without generated code: the messages come from the
descriptor set protoc builds (proto/llama_v1.desc), the calls go through grpc's generic
channel methods. Runs Generate (greedy, token ids), reads grpc.health.v1 and lists services through
server reflection.

  python_client.py --server 127.0.0.1:PORT --descriptor llama_v1.desc --variant main \
      --prompt-ids 1,403,407,261,378 --max-new-tokens 32

Prints one JSON line: {"tokens": [...], "text": "...", "finish": "...", "health": {...}}.
"""
import argparse
import json
import sys

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def message_classes(descriptor_path, names):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(descriptor_path, "rb") as f:
        fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    out = {}
    for name in names:
        desc = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            out[name] = message_factory.GetMessageClass(desc)
        else:
            out[name] = message_factory.MessageFactory(pool).GetPrototype(desc)
    return out, pool


def read_varint(buf, i):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def length_delimited(buf, field):
    """Payloads of every length-delimited occurrence of `field` in a message."""
    out, i = [], 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        wire = key & 7
        if wire == 0:
            _, i = read_varint(buf, i)
        elif wire == 2:
            n, i = read_varint(buf, i)
            if key >> 3 == field:
                out.append(buf[i:i + n])
            i += n
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return out


def reflection_services(channel):
    """Service names from grpc.reflection.v1alpha list_services (wire format by hand:
    Debian's grpcio ships no reflection client)."""
    info = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=lambda b: b, response_deserializer=lambda b: b)
    request = b"\x3a\x00"  # field 7 (list_services) = ""
    names = []
    for resp in info(iter([request]), timeout=10):
        for listing in length_delimited(resp, 6):          # list_services_response
            for service in length_delimited(listing, 1):  # repeated ServiceResponse
                names += [n.decode() for n in length_delimited(service, 1)]
    return sorted(names)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--descriptor", required=True)
    ap.add_argument("--variant", default="")
    ap.add_argument("--prompt-ids", default="1,403,407,261,378")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--token", default="")
    args = ap.parse_args()

    names = ["llama.v1.GenerateRequest", "llama.v1.GenerateResponse",
             "grpc.health.v1.HealthCheckRequest", "grpc.health.v1.HealthCheckResponse"]
    cls, pool = message_classes(args.descriptor, names)
    GenerateRequest = cls["llama.v1.GenerateRequest"]
    GenerateResponse = cls["llama.v1.GenerateResponse"]
    HealthCheckRequest = cls["grpc.health.v1.HealthCheckRequest"]
    HealthCheckResponse = cls["grpc.health.v1.HealthCheckResponse"]
    finish_enum = pool.FindEnumTypeByName("llama.v1.FinishReason")
    status_enum = HealthCheckResponse.DESCRIPTOR.enum_types_by_name["ServingStatus"]

    metadata = [("authorization", "Bearer " + args.token)] if args.token else []
    with grpc.insecure_channel(args.server) as channel:
        health = {}
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=HealthCheckRequest.SerializeToString,
                                    response_deserializer=HealthCheckResponse.FromString)
        for service in ["", args.variant]:
            resp = check(HealthCheckRequest(service=service), timeout=10)
            health[service] = status_enum.values_by_number[resp.status].name

        generate = channel.unary_stream("/llama.v1.Inference/Generate",
                                        request_serializer=GenerateRequest.SerializeToString,
                                        response_deserializer=GenerateResponse.FromString)
        req = GenerateRequest(variant=args.variant)
        req.prompt_token_ids.extend(int(t) for t in args.prompt_ids.split(","))
        req.params.max_new_tokens = args.max_new_tokens
        tokens, text, finish, chunks = [], "", 0, 0
        for chunk in generate(req, timeout=60, metadata=metadata):
            chunks += 1
            tokens.extend(chunk.token_ids)
            text += chunk.text
            if chunk.finish_reason:
                finish = chunk.finish_reason
        services = reflection_services(channel)
        # The error contract is visible from Python too.
        try:
            bad = GenerateRequest(variant="no-such-variant", prompt="x")
            list(generate(bad, timeout=10, metadata=metadata))
            not_found = "OK"
        except grpc.RpcError as e:
            not_found = e.code().name
    print(json.dumps({"tokens": tokens, "text": text, "chunks": chunks,
                      "finish": finish_enum.values_by_number[finish].name,
                      "health": health, "unknown_variant": not_found,
                      "reflection": services}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
