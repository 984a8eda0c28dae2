//! Stand-ins for the two services this system talks to but that cannot run
//! here: the Kubernetes API (`kube`) and the Webex API (`webex`). Each is a
//! library that tests embed and a binary for the demo; each speaks the real
//! API closely enough that real clients (kubectl, the Webex Python SDK)
//! accept it unmodified.

pub mod kube;
pub mod webex;
