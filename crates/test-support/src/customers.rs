//! Customers as the interpreter leaves them, for tests and benchmarks of what is stored.

use std::path::Path;

use switchboard_codec::{AttrValue, ChannelEvent, Identifier};
use switchboard_journey::{Customer, Input, JourneySet, Policies, Profile, apply, load_dir};

const T0: i64 = 1_768_471_200_000;

/// Customer `n` of the example journeys after a cart and a product view on the web (as in the
/// benchmark's memory measurement): the abandoned cart waiting, the browse test done or
/// waiting by variant, a send remembered, addresses, locale and time zone.
pub fn after_cart_and_view(n: u32) -> Customer {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let policies =
        Policies::from_path(&root.join("deploy/policies.yaml")).expect("deploy/policies.yaml");
    let journeys = JourneySet::new(
        load_dir(&root.join("journeys"), &policies.channels).expect("example journeys are valid"),
    );
    let mut customer = Customer {
        profile: Profile {
            id: format!("01KAYT4Z7Q6X0R1W6D{n:08}"),
            ..Profile::default()
        },
        ..Customer::default()
    };
    let inputs = [
        (
            "cart.updated",
            "cart_value",
            AttrValue::Double(80.0 + f64::from(n)),
        ),
        (
            "product.viewed",
            "sku",
            AttrValue::String(format!("SKU-{n}")),
        ),
    ];
    for (i, (event_type, attribute, value)) in inputs.into_iter().enumerate() {
        let event = ChannelEvent {
            event_id: format!("018f{n:04}-{i}a2b-7c3d-8e4f-5a6b7c8d9e0f"),
            event_type: event_type.into(),
            channel: "web".into(),
            occurred_at: T0 + i64::from(n),
            identifiers: vec![
                Identifier::new("anonymous_id", format!("cookie-{n}")),
                Identifier::new("email", format!("shopper{n}@example.com")),
            ],
            attributes: [(attribute.to_owned(), value)].into(),
            locale: Some("en-GB".into()),
            timezone: Some("Europe/London".into()),
        };
        let now = T0 + i64::from(n) + 1;
        customer = apply(&journeys, &policies, customer, &Input::Event(event), now).0;
    }
    assert!(!customer.instances.is_empty(), "{customer:?}");
    customer
}
