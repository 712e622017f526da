// The WebSocket to the Cầu server (docs/signaling.md): JSON text frames, one object each.
//
// Incoming messages are handled strictly one after another: `onMessage` may be async, and
// the next message waits until the promise it returned has settled. The server's offers
// must be answered one at a time, and a `participant_joined` must not overtake the
// `joined` that came before it.

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
    this.socket.addEventListener('open', () => this.onState('open'));
    this.socket.addEventListener('close', () => this.onState('closed'));
    this.socket.addEventListener('message', (event) => this.receive(event.data));
  }

  /** Send one message; dropped when the socket is not open (the session is over then). */
  send(message) {
    if (this.socket.readyState !== WebSocket.OPEN) return false;
    this.socket.send(JSON.stringify(message));
    return true;
  }

  /** Close the socket; messages still queued are dropped. */
  close() {
    this.closedByUs = true;
    this.socket.close(1000);
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
