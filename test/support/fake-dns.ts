// A DNS server for tests on loopback, UDP and TCP on one port: each query goes to `answer`, which
// returns the response (a dns-packet Packet, whose id and question are filled in from the query),
// raw bytes, or "silent" (no answer). Every query received is recorded.
import type { Socket, TCPSocketListener, udp } from "bun";
import { decode, encode, type DecodedPacket, type Packet } from "dns-packet";

export type Transport = "udp" | "tcp";
export interface Received {
  readonly transport: Transport;
  readonly packet: DecodedPacket;
}
export type Responder = (
  query: DecodedPacket,
  transport: Transport,
) => Packet | Uint8Array | "silent" | Promise<Packet | Uint8Array | "silent">;

export interface FakeDns {
  readonly port: number;
  readonly hostname: string;
  readonly received: Received[];
  stop(): void;
}

function respond(bytes: Uint8Array, transport: Transport, answer: Responder, received: Received[]): Promise<Uint8Array | undefined> {
  let query: DecodedPacket;
  try {
    query = decode(Buffer.from(bytes));
  } catch {
    return Promise.resolve(undefined);
  }
  received.push({ transport, packet: query });
  return Promise.resolve(answer(query, transport)).then((response) => {
    if (response === "silent") return undefined;
    if (response instanceof Uint8Array) return response;
    return new Uint8Array(encode({ type: "response", id: query.id, questions: query.questions, flags: 0x8180, ...response }));
  });
}

/**
 * With port 0, UDP picks the port and TCP must get the same one, which another process may hold
 * (a client's ephemeral port): try again with a new port, as the proxy itself does.
 */
export async function startFakeDns(answer: Responder, hostname = "127.0.0.1", requestedPort = 0): Promise<FakeDns> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await startOnce(answer, hostname, requestedPort);
    } catch (error) {
      if (requestedPort !== 0 || attempt >= 9) throw error;
    }
  }
}

async function startOnce(answer: Responder, hostname: string, requestedPort: number): Promise<FakeDns> {
  const received: Received[] = [];
  const datagram: udp.Socket<"buffer"> = await Bun.udpSocket({
    hostname,
    port: requestedPort,
    socket: {
      data(socket, data, port, address) {
        void respond(data, "udp", answer, received).then((bytes) => {
          if (bytes !== undefined && !socket.closed) socket.send(bytes, port, address);
        });
      },
    },
  });
  let listener: TCPSocketListener<{ buffer: Buffer }>;
  try {
    listener = listen(datagram.port);
  } catch (error) {
    datagram.close();
    throw error;
  }
  function listen(port: number): TCPSocketListener<{ buffer: Buffer }> {
    return Bun.listen<{ buffer: Buffer }>({
      hostname,
      port,
      socket: {
        open(socket) {
          socket.data = { buffer: Buffer.alloc(0) };
        },
        data(socket: Socket<{ buffer: Buffer }>, chunk) {
          socket.data.buffer = Buffer.concat([socket.data.buffer, chunk]);
          while (socket.data.buffer.length >= 2) {
            const length = socket.data.buffer.readUInt16BE(0);
            if (socket.data.buffer.length < 2 + length) return;
            const message = socket.data.buffer.subarray(2, 2 + length);
            socket.data.buffer = socket.data.buffer.subarray(2 + length);
            void respond(message, "tcp", answer, received).then((bytes) => {
              if (bytes !== undefined) socket.write(Buffer.concat([Buffer.from([bytes.length >> 8, bytes.length & 255]), bytes]));
            });
          }
        },
        error() {},
      },
    });
  }
  return {
    port: datagram.port,
    hostname,
    received,
    stop() {
      datagram.close();
      listener.stop(true);
    },
  };
}
