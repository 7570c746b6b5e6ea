//! The verification harness for usbpm.
