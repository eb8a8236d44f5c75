// Listeners for the lab: for each TCP port given, accept dual-stack on "::" and answer "ok\n" to any
// data; for each `udp:PORT`, echo every datagram back to its sender.
// Usage: bun listener.ts PORT... udp:PORT...
for (const arg of process.argv.slice(2)) {
  if (arg.startsWith("udp:")) {
    await Bun.udpSocket({
      hostname: "::",
      port: Number(arg.slice(4)),
      socket: {
        data(socket, data, port, address) {
          socket.send(data, port, address);
        },
      },
    });
    continue;
  }
  Bun.listen({
    hostname: "::",
    port: Number(arg),
    socket: {
      data(socket) {
        socket.write("ok\n");
      },
    },
  });
}
console.log("listening");
