//! The cluster token shared by the order replicas, the catalog and their callers.

/// The cluster token from a flag or, failing that, a file (a mounted Secret), trimmed.
pub fn read_token(
    token: Option<String>,
    file: Option<&std::path::Path>,
) -> Result<Option<String>, String> {
    let token = match (token, file) {
        (Some(t), _) => t,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("reading token file {}: {e}", path.display()))?,
        (None, None) => return Ok(None),
    };
    let token = token.trim().to_string();
    if token.is_empty() {
        return Err("the cluster token must not be empty".into());
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_flag_or_file_trimmed_and_never_empty() {
        let dir = std::env::temp_dir().join(format!("toystore-token-{}", std::process::id()));
        std::fs::write(&dir, "  s3cret\n").unwrap();
        assert_eq!(read_token(None, Some(&dir)), Ok(Some("s3cret".into())));
        assert_eq!(
            read_token(Some("flag".into()), Some(&dir)),
            Ok(Some("flag".into()))
        );
        assert_eq!(read_token(None, None), Ok(None));
        assert!(read_token(Some(" \n".into()), None).is_err());
        assert!(read_token(None, Some(std::path::Path::new("/nonexistent/token"))).is_err());
        std::fs::remove_file(dir).unwrap();
    }
}
