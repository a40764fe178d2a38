//! DICOM C-STORE SCU (PS3.4 Annex B, PS3.7 §9.1.1) over one association per delivery.
//!
//! One presentation context is proposed per SOP class, offering the stored transfer syntax first
//! and, for native (uncompressed) data, Explicit and Implicit VR Little Endian as alternatives
//! (PS3.8 §9.3.2.2); the SCP picks one and data sets are re-encoded only if it picked another
//! native syntax. Every C-STORE-RSP status is checked: only 0x0000 is success; warnings
//! (B000 coercion, B007 data set does not match SOP class, B006 elements discarded) and failures
//! (A7xx, A9xx, Cxxx, 0122, 0124…) fail the delivery (PS3.4 Table B.2-1).

use crate::instance::Instance;
use dicom_dictionary_std::uids;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use dicom_ul::association::client::ClientAssociationOptions;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use std::time::Duration;

/// Where and as whom to associate.
#[derive(Debug, Clone)]
pub struct CstoreTarget<'a> {
    /// Host name or address.
    pub host: &'a str,
    /// TCP port.
    pub port: u16,
    /// Called AE title.
    pub called_ae: &'a str,
    /// Calling AE title.
    pub calling_ae: &'a str,
    /// Connection, read and write timeout.
    pub timeout: Duration,
}

const NATIVE: [&str; 2] = [
    uids::EXPLICIT_VR_LITTLE_ENDIAN,
    uids::IMPLICIT_VR_LITTLE_ENDIAN,
];

fn trim(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' '])
}

/// Transfer syntaxes proposed for an instance stored in `stored`.
fn proposed_syntaxes(stored: &str) -> Vec<String> {
    let mut v = vec![stored.to_string()];
    if NATIVE.contains(&stored) {
        v.extend(
            NATIVE
                .iter()
                .filter(|ts| **ts != stored)
                .map(|s| s.to_string()),
        );
    }
    v
}

/// Send every instance; `Err` names the first instance that was not stored with status 0x0000.
pub async fn store_all(target: &CstoreTarget<'_>, instances: &[&Instance]) -> Result<(), String> {
    if instances.is_empty() {
        return Ok(());
    }
    let mut opts = ClientAssociationOptions::new()
        .calling_ae_title(target.calling_ae)
        .called_ae_title(target.called_ae)
        .connection_timeout(target.timeout)
        .read_timeout(target.timeout)
        .write_timeout(target.timeout);
    let mut classes: Vec<(&str, &str)> = vec![];
    for i in instances {
        let key = (i.sop_class_uid.as_str(), i.transfer_syntax_uid.as_str());
        if !classes.contains(&key) {
            classes.push(key);
        }
    }
    for (class, ts) in &classes {
        opts = opts.with_presentation_context(class.to_string(), proposed_syntaxes(ts));
    }
    let mut assoc = opts
        .establish_async((target.host, target.port))
        .await
        .map_err(|e| format!("association with {}: {e}", target.called_ae))?;

    let mut outcome = Ok(());
    for (n, inst) in instances.iter().enumerate() {
        let message_id = (n % 0xFFFF) as u16 + 1;
        if let Err(e) = store_one(&mut assoc, inst, message_id).await {
            outcome = Err(format!("C-STORE of {}: {e}", inst.sop_instance_uid));
            break;
        }
    }
    match outcome {
        Ok(()) => assoc
            .release()
            .await
            .map_err(|e| format!("association release: {e}")),
        Err(e) => {
            // Best effort: the association is of no further use.
            let _ = assoc.abort().await;
            Err(e)
        }
    }
}

async fn store_one(
    assoc: &mut dicom_ul::association::AsyncClientAssociation<tokio::net::TcpStream>,
    inst: &Instance,
    message_id: u16,
) -> Result<(), String> {
    // Prefer a context whose syntax is the stored one, so no re-encoding is needed.
    let contexts = assoc.presentation_contexts();
    let candidates: Vec<_> = contexts
        .iter()
        .filter(|pc| trim(&pc.abstract_syntax) == inst.sop_class_uid)
        .collect();
    let pc = candidates
        .iter()
        .find(|pc| trim(&pc.transfer_syntax) == inst.transfer_syntax_uid)
        .or_else(|| candidates.first())
        .ok_or_else(|| {
            format!(
                "the SCP accepted no presentation context for SOP class {}",
                inst.sop_class_uid
            )
        })?;
    let (pc_id, ts) = (pc.id, trim(&pc.transfer_syntax).to_string());
    let dataset = if ts == inst.transfer_syntax_uid {
        inst.dataset().to_vec()
    } else {
        transcode(inst, &ts)?
    };

    let command = store_rq(&inst.sop_class_uid, &inst.sop_instance_uid, message_id);
    assoc
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command,
            }],
        })
        .await
        .map_err(|e| format!("sending C-STORE-RQ: {e}"))?;
    // Fragment the data set into P-DATA-TF PDUs that fit the acceptor's maximum PDU length
    // (PS3.8 §9.3.5: the PDV item adds 6 bytes to its fragment). Done by hand rather than with
    // dicom-ul's P-Data writer, whose `Drop` needs a multi-threaded runtime.
    let chunk = (assoc.acceptor_max_pdu_length() as usize)
        .saturating_sub(6)
        .clamp(1, 1 << 20);
    let fragments = dataset.chunks(chunk).count().max(1);
    for (n, fragment) in dataset
        .chunks(chunk)
        .chain(dataset.is_empty().then_some(&[][..]))
        .enumerate()
    {
        assoc
            .send(&Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: pc_id,
                    value_type: PDataValueType::Data,
                    is_last: n + 1 == fragments,
                    data: fragment.to_vec(),
                }],
            })
            .await
            .map_err(|e| format!("sending data set: {e}"))?;
    }

    let mut rsp = vec![];
    loop {
        match assoc.receive().await {
            Ok(Pdu::PData { data }) => {
                let mut last = false;
                for pdv in data {
                    if pdv.value_type == PDataValueType::Command {
                        rsp.extend_from_slice(&pdv.data);
                        last |= pdv.is_last;
                    }
                }
                if last {
                    break;
                }
            }
            Ok(Pdu::AbortRQ { source }) => return Err(format!("SCP aborted: {source:?}")),
            Ok(other) => {
                return Err(format!(
                    "unexpected PDU while awaiting C-STORE-RSP: {}",
                    other.short_description()
                ))
            }
            Err(e) => return Err(format!("awaiting C-STORE-RSP: {e}")),
        }
    }
    let rsp = parse_command(&rsp)?;
    if rsp.command_field != Some(0x8001) {
        return Err(format!(
            "expected C-STORE-RSP (0x8001), got command field {:?}",
            rsp.command_field
        ));
    }
    if rsp.responding_to.is_some_and(|id| id != message_id) {
        return Err(format!(
            "C-STORE-RSP answers message {:?}, not {message_id}",
            rsp.responding_to
        ));
    }
    match rsp.status {
        Some(0x0000) => Ok(()),
        Some(status) => Err(format!(
            "status 0x{status:04X} ({}){}",
            describe_status(status),
            rsp.error_comment
                .map(|c| format!(": {c}"))
                .unwrap_or_default()
        )),
        None => Err("C-STORE-RSP without a status".into()),
    }
}

/// Re-encode a native data set in another native transfer syntax.
fn transcode(inst: &Instance, ts_uid: &str) -> Result<Vec<u8>, String> {
    let from = TransferSyntaxRegistry
        .get(&inst.transfer_syntax_uid)
        .ok_or_else(|| format!("unknown transfer syntax {}", inst.transfer_syntax_uid))?;
    let to = TransferSyntaxRegistry
        .get(ts_uid)
        .ok_or_else(|| format!("unknown transfer syntax {ts_uid}"))?;
    if !NATIVE.contains(&inst.transfer_syntax_uid.as_str()) || !NATIVE.contains(&ts_uid) {
        return Err(format!(
            "cannot convert {} to {ts_uid} (only native syntaxes are re-encoded)",
            inst.transfer_syntax_uid
        ));
    }
    let obj = InMemDicomObject::read_dataset_with_ts(inst.dataset(), from)
        .map_err(|e| format!("reading data set: {e}"))?;
    let mut out = vec![];
    obj.write_dataset_with_ts(&mut out, to)
        .map_err(|e| format!("re-encoding data set: {e}"))?;
    Ok(out)
}

/// Meaning of a C-STORE status (PS3.4 Table B.2-1, PS3.7 Annex C).
pub fn describe_status(status: u16) -> &'static str {
    match status {
        0x0000 => "success",
        0xB000 => "warning: coercion of data elements",
        0xB007 => "warning: data set does not match SOP class",
        0xB006 => "warning: elements discarded",
        0x0107 => "warning: attribute list error",
        0x0116 => "warning: attribute value out of range",
        0xA700..=0xA7FF => "refused: out of resources",
        0xA900..=0xA9FF => "error: data set does not match SOP class",
        0xC000..=0xCFFF => "error: cannot understand",
        0x0122 => "refused: SOP class not supported",
        0x0124 => "refused: not authorized",
        0x0210 => "failure: duplicate invocation",
        0x0211 => "failure: unrecognized operation",
        0x0212 => "failure: mistyped argument",
        0x0117 => "failure: invalid object instance",
        0x0111 => "failure: duplicate SOP instance",
        0x0110 => "failure: processing failure",
        _ => "failure",
    }
}

/// Append one implicit-VR little-endian element (commands are always implicit VR LE,
/// PS3.7 §6.3.1); values are padded to even length (UIDs with NUL, PS3.5 §9.1).
fn put(buf: &mut Vec<u8>, group: u16, element: u16, value: &[u8]) {
    let padded = value.len() + value.len() % 2;
    buf.extend_from_slice(&group.to_le_bytes());
    buf.extend_from_slice(&element.to_le_bytes());
    buf.extend_from_slice(&(padded as u32).to_le_bytes());
    buf.extend_from_slice(value);
    if value.len() % 2 == 1 {
        buf.push(0);
    }
}

/// A C-STORE-RQ command set (PS3.7 Table 9.3-1).
pub(crate) fn store_rq(sop_class: &str, sop_instance: &str, message_id: u16) -> Vec<u8> {
    let mut body = vec![];
    put(&mut body, 0x0000, 0x0002, sop_class.as_bytes()); // Affected SOP Class UID
    put(&mut body, 0x0000, 0x0100, &0x0001u16.to_le_bytes()); // Command Field: C-STORE-RQ
    put(&mut body, 0x0000, 0x0110, &message_id.to_le_bytes()); // Message ID
    put(&mut body, 0x0000, 0x0700, &0x0000u16.to_le_bytes()); // Priority: medium
    put(&mut body, 0x0000, 0x0800, &0x0000u16.to_le_bytes()); // Command Data Set Type: present
    put(&mut body, 0x0000, 0x1000, sop_instance.as_bytes()); // Affected SOP Instance UID
    let mut out = vec![];
    put(&mut out, 0x0000, 0x0000, &(body.len() as u32).to_le_bytes()); // Command Group Length
    out.extend_from_slice(&body);
    out
}

/// The fields of a response command set we act on.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct CommandRsp {
    pub command_field: Option<u16>,
    pub responding_to: Option<u16>,
    pub status: Option<u16>,
    pub error_comment: Option<String>,
}

/// Parse an implicit-VR LE command set, bounds-checked.
pub(crate) fn parse_command(bytes: &[u8]) -> Result<CommandRsp, String> {
    let mut rsp = CommandRsp::default();
    let mut pos = 0usize;
    let u16_at = |v: &[u8]| -> Option<u16> { v.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]])) };
    while pos + 8 <= bytes.len() {
        let group = u16::from_le_bytes([bytes[pos], bytes[pos + 1]]);
        let element = u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]);
        let len = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        pos += 8;
        let value = bytes
            .get(pos..pos.saturating_add(len))
            .ok_or_else(|| "truncated command set".to_string())?;
        pos += len;
        if group != 0x0000 {
            return Err(format!(
                "element ({group:04X},{element:04X}) in a command set"
            ));
        }
        match element {
            0x0100 => rsp.command_field = u16_at(value),
            0x0120 => rsp.responding_to = u16_at(value),
            0x0900 => rsp.status = u16_at(value),
            0x0902 => {
                rsp.error_comment = Some(
                    String::from_utf8_lossy(value)
                        .trim_end_matches(['\0', ' '])
                        .to_string(),
                )
            }
            _ => {}
        }
    }
    if pos != bytes.len() {
        return Err("trailing bytes in command set".into());
    }
    Ok(rsp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_request_is_even_and_parses_back() {
        let rq = store_rq("1.2.840.10008.5.1.4.1.1.88.34", "2.25.123", 7);
        assert_eq!(rq.len() % 2, 0);
        let parsed = parse_command(&rq).unwrap();
        assert_eq!(parsed.command_field, Some(0x0001));
        // Group length equals the bytes after it.
        let gl = u32::from_le_bytes([rq[8], rq[9], rq[10], rq[11]]) as usize;
        assert_eq!(gl, rq.len() - 12);
    }

    #[test]
    fn warning_status_is_read_and_described() {
        let mut rsp = vec![];
        put(&mut rsp, 0, 0x0100, &0x8001u16.to_le_bytes());
        put(&mut rsp, 0, 0x0120, &3u16.to_le_bytes());
        put(&mut rsp, 0, 0x0900, &0xB007u16.to_le_bytes());
        put(&mut rsp, 0, 0x0902, b"odd");
        let p = parse_command(&rsp).unwrap();
        assert_eq!(p.status, Some(0xB007));
        assert_eq!(p.responding_to, Some(3));
        assert_eq!(p.error_comment.as_deref(), Some("odd"));
        assert!(describe_status(0xB007).starts_with("warning"));
        assert!(describe_status(0xA701).contains("out of resources"));
    }

    #[test]
    fn truncated_command_is_an_error_not_a_panic() {
        let rq = store_rq("1.2", "1.3", 1);
        assert!(parse_command(&rq[..rq.len() - 3]).is_err());
    }

    #[test]
    fn native_syntaxes_offer_alternatives_compressed_do_not() {
        assert_eq!(proposed_syntaxes(uids::EXPLICIT_VR_LITTLE_ENDIAN).len(), 2);
        assert_eq!(proposed_syntaxes(uids::JPEG2000_LOSSLESS).len(), 1);
    }
}
