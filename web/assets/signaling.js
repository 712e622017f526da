// The WebSocket to the Cầu server (docs/signaling.md): JSON text frames, one object each.
//
// Incoming messages are handled strictly one after another: `onMessage` may be async, and
// the next message waits until the promise it returned has settled. The server's offers
// must be answered one at a time, and a `participant_joined` must not overtake the
// `joined` that came before it.

/** A socket not open after this long is given up, so that a dead line is retried soon. */
const CONNECT_TIMEOUT_MS = 4000;
/** The close code that tells the server this client will connect again: its site is
 * then reconnecting and keeps its seat, rather than leaving (docs/signaling.md). */
export const CLOSE_TO_RECONNECT = 4000;

export class Signaling {
  /**
   * @param {object} handlers
   * @param {(message: object) => Promise<void> | void} handlers.onMessage
   * @param {(state: 'connecting' | 'open' | 'closed') => void} handlers.onState
   * @param {(error: Error) => void} handlers.onError  a message could not be read or handled
   */
  constructor({ onMessage, onState, onError }) {
    this.onMessage = onMessage;
    this.onState = onState;
    this.onError = onError;
    this.chain = Promise.resolve();
    this.closedByUs = false;
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    this.socket = new WebSocket(`${scheme}://${location.host}/ws`);
    this.onState('connecting');
    // A line that drops packets rather than refusing them leaves a socket connecting
    // for minutes: give up and let the page try again.
    this.connectTimer = setTimeout(() => {
      if (this.socket.readyState === WebSocket.CONNECTING) this.onState('closed');
    }, CONNECT_TIMEOUT_MS);
    this.socket.addEventListener('open', () => {
      clearTimeout(this.connectTimer);
      this.onState('open');
    });
    this.socket.addEventListener('close', () => {
      clearTimeout(this.connectTimer);
      this.onState('closed');
    });
    this.socket.addEventListener('message', (event) => this.receive(event.data));
  }

  /** Send one message; dropped when the socket is not open (the session is over then). */
  send(message) {
    if (this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /**
   * Close the socket; messages still queued are dropped. `reconnecting`: the page will
   * connect again at once, so the server keeps the site's seat.
   */
  close({ reconnecting = false } = {}) {
    this.closedByUs = true;
    clearTimeout(this.connectTimer);
    this.socket.close(reconnecting ? CLOSE_TO_RECONNECT : 1000);
  }

  receive(data) {
    let message;
    try {
      if (typeof data !== 'string') throw new Error('binary frame from the server');
      message = JSON.parse(data);
      if (message === null || typeof message !== 'object' || typeof message.type !== 'string') {
        throw new Error('a message without a type');
      }
    } catch (error) {
      this.onError(error);
      return;
    }
    this.chain = this.chain
      .then(() => {
        if (this.closedByUs) return undefined;
        return this.onMessage(message);
      })
      .catch((error) => this.onError(error));
  }
}
