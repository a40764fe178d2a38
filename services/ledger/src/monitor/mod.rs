//! `spinescreen monitor`: the experiment's periodic quality check, built in.
//!
//! Every 3–4 weeks experts reviewed 20 (later 80) random studies and recorded whether they agree
//! with the conclusion and the localisation (Artyukova et al., Digital Diagnostics 2024).
//! [`sample`] draws that sample reproducibly from the ledger and writes the review worksheet;
//! [`report`] reads the filled worksheet back and computes the agreement with Wilson intervals,
//! the experiment's verdict bands, technical defects by reason and station, processing time and
//! the SLA share. [`worksheet`] is the sheet's format, shared by both. [`stored`] keeps each
//! recorded report in the ledger for the console's monitoring page.

pub mod report;
pub mod sample;
pub mod stored;
pub mod worksheet;
