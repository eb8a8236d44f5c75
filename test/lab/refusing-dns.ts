// A DNS server that answers every query REFUSED, on ADDRESS port 53 (UDP): bun refusing-dns.ts ADDRESS
const [address = ""] = process.argv.slice(2);
await Bun.udpSocket({
  hostname: address,
  port: 53,
  socket: {
    data(socket, bytes, port, from) {
      if (bytes.length < 12) return;
      const reply = new Uint8Array(bytes);
      reply[2] = 0x80 | (bytes[2]! & 0x79); // QR, the query's opcode and RD
      reply[3] = 0x80 | 5; // RA, REFUSED
      socket.send(reply, port, from);
    },
  },
});
console.log("listening");
