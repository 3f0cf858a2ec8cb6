// hello.mjs — herald-client from the outside: mint a token for alice (the
// app server's part), connect, create a conversation, send to it and wait
// for the push of the message.
//   HERALD_GATEWAY=… HERALD_TENANT=… HERALD_SECRET=… node hello.mjs
import { HeraldClient, memoryStore, mintToken, tcp } from "herald-client/node";

const { HERALD_GATEWAY, HERALD_TENANT, HERALD_SECRET } = process.env;
if (!HERALD_GATEWAY || !HERALD_TENANT || !HERALD_SECRET) {
  console.error("set HERALD_GATEWAY, HERALD_TENANT and HERALD_SECRET");
  process.exit(2);
}
// An app server mints a token for each user it has logged in.
const token = mintToken(HERALD_SECRET, HERALD_TENANT, "alice", { ttlSeconds: 3600 });

const client = new HeraldClient({ connect: tcp(HERALD_GATEWAY), token, store: memoryStore() });
try {
  await client.connect();
  console.log(`connected as ${client.user}@${client.tenant}`);
  const { conv } = await client.createConversation("group", ["alice"]);
  const pushed = new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("no push within 5 s")), 5000);
    client.on("message", (m) => {
      if (m.conv !== conv || m.system) return;
      clearTimeout(t);
      resolve(m);
    });
  });
  const ack = await client.send(conv, "hello");
  console.log(`ack ${conv} seq ${ack.seq}`);
  const m = await pushed;
  console.log(`push ${m.conv} seq ${m.seq} from ${m.from}: ${m.text}`);
} catch (e) {
  console.error(`hello: ${e.message}`); // e.code / e.codeName: the Herald error code
  process.exitCode = 1;
} finally {
  client.close();
}
