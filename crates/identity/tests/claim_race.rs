//! The identifiers an event brings that nobody holds are reserved and claimed together; a
//! claim lost to another stitcher in between is given back and the two profiles merge, as
//! when they are taken one by one.

use switchboard_codec::Identifier;
use switchboard_identity::store::{
    Committed, IdentityStore, Limits, Node, Reservation, Reserved, StoreError,
};
use switchboard_identity::{MemoryIdentityStore, ProfileId, stitch};

/// The memory store, where another stitcher claims `stolen` for `thief` just before this
/// stitcher's claims land.
struct Racing {
    inner: MemoryIdentityStore,
    stolen: Identifier,
    thief: ProfileId,
}

impl IdentityStore for Racing {
    async fn lookup(&self, ids: &[Identifier]) -> Result<Vec<Option<ProfileId>>, StoreError> {
        self.inner.lookup(ids).await
    }
    async fn node(&self, id: &ProfileId) -> Result<Option<Node>, StoreError> {
        self.inner.node(id).await
    }
    async fn claim(
        &self,
        identifier: &Identifier,
        profile: &ProfileId,
    ) -> Result<Option<ProfileId>, StoreError> {
        self.inner.claim(identifier, profile).await
    }
    async fn claim_all(
        &self,
        identifiers: &[Identifier],
        profile: &ProfileId,
    ) -> Result<Vec<Option<ProfileId>>, StoreError> {
        let r = Reservation {
            identifiers: vec![self.stolen.clone()],
            merges: 0,
        };
        let reserved = self.inner.reserve(&self.thief, &r, &limits()).await?;
        assert!(matches!(reserved, Reserved::Added(_)), "{reserved:?}");
        assert_eq!(self.inner.claim(&self.stolen, &self.thief).await?, None);
        let mut owners = Vec::new();
        for identifier in identifiers {
            owners.push(self.inner.claim(identifier, profile).await?);
        }
        Ok(owners)
    }
    async fn repoint(
        &self,
        i: &Identifier,
        from: &ProfileId,
        to: &ProfileId,
    ) -> Result<(), StoreError> {
        self.inner.repoint(i, from, to).await
    }
    async fn reparent(
        &self,
        p: &ProfileId,
        from: &ProfileId,
        to: &ProfileId,
    ) -> Result<(), StoreError> {
        self.inner.reparent(p, from, to).await
    }
    async fn reserve(
        &self,
        root: &ProfileId,
        r: &Reservation,
        limits: &Limits,
    ) -> Result<Reserved, StoreError> {
        self.inner.reserve(root, r, limits).await
    }
    async fn release(&self, root: &ProfileId, ids: &[Identifier]) -> Result<(), StoreError> {
        self.inner.release(root, ids).await
    }
    async fn commit_merge(
        &self,
        loser: &ProfileId,
        survivor: &ProfileId,
        version: u64,
    ) -> Result<Committed, StoreError> {
        self.inner.commit_merge(loser, survivor, version).await
    }
    async fn record_merge(
        &self,
        survivor: &ProfileId,
        loser: &ProfileId,
    ) -> Result<(), StoreError> {
        self.inner.record_merge(survivor, loser).await
    }
    async fn erase(&self, profile: &ProfileId, ids: &[Identifier]) -> Result<(), StoreError> {
        self.inner.erase(profile, ids).await
    }
    async fn erasures(&self) -> Result<u64, StoreError> {
        self.inner.erasures().await
    }
}

fn limits() -> Limits {
    Limits {
        per_kind: Default::default(),
        total: 100,
        merges: 10,
    }
}

#[tokio::test]
async fn a_claim_lost_between_reserve_and_claim_is_given_back_and_the_profiles_merge() {
    let ids = vec![
        Identifier::new("customer_id", "C1"),
        Identifier::new("email", "one@example.com"),
        Identifier::new("anonymous_id", "cookie-1"),
    ];
    // The thief is older (profile ids order by creation time), so it survives the merge.
    let thief = ProfileId::derive(1, "test", "thief");
    let store = Racing {
        inner: MemoryIdentityStore::new(),
        stolen: ids[1].clone(),
        thief: thief.clone(),
    };
    let stitched = stitch(&store, &limits(), &ids, 1_000).await.unwrap();

    assert_eq!(stitched.profile, thief, "{stitched:?}");
    assert_eq!(stitched.merges.len(), 1, "{stitched:?}");
    let owners = store.inner.lookup(&ids).await.unwrap();
    for (id, owner) in ids.iter().zip(&owners) {
        let root = switchboard_identity::find_root(&store.inner, owner.as_ref().unwrap())
            .await
            .unwrap();
        assert_eq!(root, thief, "{id:?} ends in the surviving profile");
    }
    // The survivor's node holds the three: its own and the two the merge brought.
    let node = store.inner.node(&thief).await.unwrap().unwrap();
    let mut held: Vec<&Identifier> = node.identifiers.iter().collect();
    held.sort();
    let mut expected: Vec<&Identifier> = ids.iter().collect();
    expected.sort();
    assert_eq!(held, expected);
}
