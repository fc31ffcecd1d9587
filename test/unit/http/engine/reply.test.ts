import { Socket } from "node:net";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { Reply } from "../../../../src/http/engine/reply.ts";
import type { HttpRequest, ReplySink } from "../../../../src/http/engine/reply.ts";

function replyOn(socket: Socket): { reply: Reply; done: boolean[] } {
  const done: boolean[] = [];
  const sink: ReplySink = {
    socket,
    keepAliveLine: "",
    isClosingAfter: () => false,
    onReplyDone: (shouldClose) => void done.push(shouldClose),
  };
  const req: HttpRequest = { method: "GET", url: "/", headers: {}, hasBody: false, socket, clientKey: "test" };
  return { reply: new Reply(req, sink), done };
}

describe("Reply", () => {
  it("releases a stream's source when the client is already gone, and finishes the reply as closing", () => {
    const socket = new Socket();
    socket.destroy();
    const { reply, done } = replyOn(socket);
    const source = Readable.from([Buffer.from("abc")]);
    reply.writeHead(200, { "content-length": 3 });
    reply.stream(source);
    expect(source.destroyed).toBe(true);
    expect(done).toEqual([true]);
  });

  it("refuses what would break framing or the head: a wrong body length, engine-owned headers, CR/LF", () => {
    const { reply } = replyOn(new Socket());
    expect(() => reply.setHeader("x-a", "1\r\nset-cookie: a=b")).toThrow();
    expect(() => reply.writeHead(200, { "transfer-encoding": "chunked" })).toThrow(/set by the HTTP engine/);
    const other = replyOn(new Socket()).reply;
    other.writeHead(200, { "content-length": 5 });
    expect(() => other.end("too long")).toThrow(/content-length of 5/);
  });
});
