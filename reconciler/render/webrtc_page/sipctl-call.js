// The click-to-call page's logic (written by sipctl). Browsers call as guests: no password,
// nothing to steal; the PBX lets a guest reach the declared names and nothing else.
// Every element is found by its data-sipctl-* attribute, so the markup can be restyled freely.
import { Inviter, SessionState, UserAgent } from "./vendor/sip.js";

const root = document.querySelector("[data-sipctl-server]");
const server = root.dataset.sipctlServer;
const domain = root.dataset.sipctlDomain;
const from = root.dataset.sipctlFrom;
const status = document.querySelector("[data-sipctl-status]");
const hangupButton = document.querySelector("[data-sipctl-hangup]");
const audio = document.querySelector("[data-sipctl-audio]");
const callButtons = document.querySelectorAll("[data-sipctl-call]");
// With asterisk.video the page has a camera button: pressed, the next call sends and shows video.
const videoOffered = root.dataset.sipctlVideo === "yes";
const cameraButton = document.querySelector("[data-sipctl-camera]");
const videos = document.querySelector("[data-sipctl-videos]");
const remoteVideo = document.querySelector("[data-sipctl-remote-video]");
const localVideo = document.querySelector("[data-sipctl-local-video]");
let cameraOn = false;

let userAgent = null;
let session = null;

function say(text, state) {
  status.textContent = text;
  status.dataset.state = state;
}

function busy(on) {
  callButtons.forEach((button) => { button.disabled = on; });
  hangupButton.disabled = !on;
  if (cameraButton !== null) {
    cameraButton.disabled = on;
  }
}

function setCamera(on) {
  cameraOn = videoOffered && on;
  if (cameraButton !== null) {
    cameraButton.setAttribute("aria-pressed", String(cameraOn));
    cameraButton.textContent = cameraOn ? "Camera on" : "Camera off";
  }
}

function withVideo() {
  return videoOffered && cameraOn;
}

async function microphoneAllowed() {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: withVideo() });
    stream.getTracks().forEach((track) => track.stop());
    return true;
  } catch {
    return false;
  }
}

async function connected() {
  if (userAgent !== null && userAgent.isConnected()) {
    return userAgent;
  }
  userAgent = new UserAgent({
    uri: UserAgent.makeURI(from),
    displayName: "Web caller",
    transportOptions: { server },
    logLevel: "error",
    sessionDescriptionHandlerFactoryOptions: { peerConnectionConfiguration: { iceServers: [] } },
  });
  userAgent.transport.onDisconnect = (error) => {
    if (error && session !== null) {
      say("Could not reach the server", "error");
    }
  };
  await userAgent.start();
  return userAgent;
}

function playRemote() {
  const handler = session && session.sessionDescriptionHandler;
  if (handler && handler.remoteMediaStream) {
    audio.srcObject = handler.remoteMediaStream;
    audio.play().catch(() => {});
  }
  if (handler && videos !== null && withVideo()) {
    // The sound plays through the audio element; the video elements are muted.
    remoteVideo.srcObject = handler.remoteMediaStream;
    localVideo.srcObject = handler.localMediaStream;
    videos.hidden = false;
    remoteVideo.play().catch(() => {});
    localVideo.play().catch(() => {});
  }
}

function stopVideo() {
  if (videos !== null) {
    videos.hidden = true;
    remoteVideo.srcObject = null;
    localVideo.srcObject = null;
  }
}

/** Call NAME at the company's domain; the status element says what happens, in words. */
export async function call(name) {
  if (session !== null) {
    return;
  }
  busy(true);
  say(`Calling ${name}…`, "calling");
  if (!(await microphoneAllowed())) {
    busy(false);
    say(
      withVideo()
        ? "Microphone or camera blocked: allow them for this page, or turn the camera off"
        : "Microphone blocked: allow it for this page to call",
      "error",
    );
    return;
  }
  let agent;
  try {
    agent = await connected();
  } catch {
    userAgent = null;
    busy(false);
    say("Could not reach the server", "error");
    return;
  }
  const target = UserAgent.makeURI(`sip:${name}@${domain}`);
  const current = new Inviter(agent, target, {
    sessionDescriptionHandlerOptions: { constraints: { audio: true, video: withVideo() } },
  });
  session = current;
  let answered = false;
  current.stateChange.addListener((state) => {
    if (state === SessionState.Established) {
      answered = true;
      playRemote();
      say(`Connected to ${name}`, "connected");
    } else if (state === SessionState.Terminated) {
      session = null;
      stopVideo();
      busy(false);
      if (status.dataset.state !== "error") {
        say(answered ? "Call ended" : `Call ended: ${name} did not answer`, "ended");
      }
    }
  });
  try {
    await current.invite();
  } catch {
    session = null;
    busy(false);
    say("Could not reach the server", "error");
  }
}

/** Hang up (or cancel a call that is still ringing). */
export function hangup() {
  const current = session;
  if (current === null) {
    return;
  }
  if (current.state === SessionState.Established) {
    current.bye().catch(() => {});
  } else if (current.state === SessionState.Establishing || current.state === SessionState.Initial) {
    current.cancel().catch(() => {});
  }
}

callButtons.forEach((button) => {
  button.addEventListener("click", () => call(button.dataset.sipctlCall));
});
hangupButton.addEventListener("click", hangup);
if (cameraButton !== null) {
  cameraButton.addEventListener("click", () => setCamera(!cameraOn));
}

/** The call in progress (a SIP.js Inviter), or null: for a page's own additions, such as
 *  call statistics (its sessionDescriptionHandler.peerConnection.getStats()). */
export function activeSession() {
  return session;
}
