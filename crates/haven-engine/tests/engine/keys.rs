//! Several keys open one repository; a wrong password opens nothing.

use haven_engine::{Error, KdfParams, Repository};

use crate::helpers::{PASSWORD, new_repo};

#[test]
fn every_key_opens_the_same_repository_and_wrong_passwords_fail() {
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().join("repo");
    let repo = new_repo(&dir);
    let cheap = KdfParams {
        m_cost: 1024,
        t_cost: 1,
        p_cost: 1,
    };
    repo.add_key(b"second password", cheap).expect("add key");
    let location = crate::helpers::location(&dir);
    let by_first = Repository::open(&location, PASSWORD).expect("first key");
    let by_second = Repository::open(&location, b"second password").expect("second key");
    assert_eq!(by_first.config().id, by_second.config().id);
    assert_eq!(repo.backend().list("keys").expect("keys").len(), 2);

    match Repository::open(&location, b"guess") {
        Err(Error::WrongPassword { .. }) => {}
        other => panic!("expected WrongPassword, got {:?}", other.map(|_| ())),
    }
    let err = Repository::init(&location, b"again", &crate::helpers::test_options())
        .err()
        .expect("exists");
    assert!(matches!(err, Error::RepositoryExists { .. }), "{err}");
}
