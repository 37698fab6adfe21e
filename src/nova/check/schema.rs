//! The schemas' tables: the update-server schemas
//! (`nova/api/openstack/compute/schemas/servers.py` `update*`) as the
//! guarded [`Field`] of each property in schema order, and which of them a
//! request gets; the create and rebuild schemas' properties in their order,
//! the guarded fields among the [`Other`] ones nova-guard only needs to know
//! are valid.

use super::field::Field;
use super::other::Other;
use crate::nova::{Microversion, Mode, Release};

/// `server`'s schema: its properties in schema order, and whether unknown
/// keys are dropped (legacy v2) instead of rejected.
#[derive(Debug)]
pub(super) struct Schema {
    pub props: &'static [(&'static str, Field)],
    pub legacy: bool,
}

/// The most properties an update schema has (`check` keeps one slot each).
pub(super) const MAX_PROPS: usize = 8;

const UPDATE_V20: Schema = Schema {
    props: &[
        ("name", Field::NameLegacy),
        ("OS-DCF:diskConfig", Field::DiskConfig),
        ("accessIPv4", Field::Ipv4),
        ("accessIPv6", Field::Ipv6),
    ],
    legacy: true,
};

const UPDATE: Schema = Schema {
    props: &[
        ("name", Field::Name),
        ("OS-DCF:diskConfig", Field::DiskConfig),
        ("accessIPv4", Field::Ipv4),
        ("accessIPv6", Field::Ipv6),
    ],
    legacy: false,
};

const UPDATE_V219: Schema = Schema {
    props: &[
        ("name", Field::Name),
        ("OS-DCF:diskConfig", Field::DiskConfig),
        ("accessIPv4", Field::Ipv4),
        ("accessIPv6", Field::Ipv6),
        ("description", Field::Description),
    ],
    legacy: false,
};

const UPDATE_V290: Schema = Schema {
    props: &[
        ("name", Field::Name),
        ("OS-DCF:diskConfig", Field::DiskConfig),
        ("accessIPv4", Field::Ipv4),
        ("accessIPv6", Field::Ipv6),
        ("description", Field::Description),
        ("hostname", Field::HostnameLabel),
    ],
    legacy: false,
};

const UPDATE_V294: Schema = Schema {
    props: &[
        ("name", Field::Name),
        ("OS-DCF:diskConfig", Field::DiskConfig),
        ("accessIPv4", Field::Ipv4),
        ("accessIPv6", Field::Ipv6),
        ("description", Field::Description),
        ("hostname", Field::HostnameFqdn),
    ],
    legacy: false,
};

const UPDATE_V2104: Schema = Schema {
    props: &[
        ("name", Field::Name),
        ("OS-DCF:diskConfig", Field::DiskConfig),
        ("accessIPv4", Field::Ipv4),
        ("accessIPv6", Field::Ipv6),
        ("description", Field::Description),
        ("hostname", Field::HostnameFqdn),
        ("pinned_availability_zone", Field::NameOrNone),
    ],
    legacy: false,
};

/// A property of a create or rebuild entity: one nova-guard guards (checked
/// with Nova's message), or one it only needs to know is valid because it
/// comes earlier in the schema's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Prop {
    Guarded(Field),
    Other(Other),
}

/// The properties of `server` in Nova's create schema for a request, in the
/// schema's order (`create`, `create_v20`, `create_v219` … `create_v294`:
/// later versions append keys, replace `networks` and `hostname` in place and
/// drop `personality`), and the keys it requires.
pub(super) fn create_props(
    mode: Mode,
    version: Microversion,
) -> (Vec<(&'static str, Prop)>, &'static [&'static str]) {
    let legacy = mode == Mode::LegacyV2;
    // The legacy endpoint runs the 2.0 schema whatever the headers said.
    let at = |minor: u16| !legacy && version >= Microversion::new(2, minor);
    let name = if legacy {
        Field::NameLegacy
    } else {
        Field::Name
    };
    let mut props = vec![
        ("name", Prop::Guarded(name)),
        ("imageRef", Prop::Other(Other::ImageIdOrEmpty)),
        ("flavorRef", Prop::Other(Other::FlavorRef)),
        ("adminPass", Prop::Other(Other::AnyString)),
        ("metadata", Prop::Other(Other::Metadata)),
        ("networks", Prop::Other(Other::Networks { named: at(37) })),
        ("OS-DCF:diskConfig", Prop::Guarded(Field::DiskConfig)),
        ("accessIPv4", Prop::Guarded(Field::Ipv4)),
        ("accessIPv6", Prop::Guarded(Field::Ipv6)),
    ];
    if !at(57) {
        props.push(("personality", Prop::Other(Other::EmptyArrayOnly)));
    }
    props.extend([
        ("availability_zone", Prop::Other(Other::Same(name))),
        ("block_device_mapping", Prop::Other(Other::EmptyArrayOnly)),
        (
            "block_device_mapping_v2",
            Prop::Other(Other::BlockDeviceMappingV2),
        ),
        ("config_drive", Prop::Other(Other::Boolean)),
        ("key_name", Prop::Other(Other::Same(name))),
        ("min_count", Prop::Other(Other::PositiveInteger)),
        ("max_count", Prop::Other(Other::PositiveInteger)),
        ("return_reservation_id", Prop::Other(Other::Boolean)),
        (
            "security_groups",
            Prop::Other(Other::SecurityGroups { legacy }),
        ),
        (
            "user_data",
            Prop::Other(Other::UserData { nullable: legacy }),
        ),
    ]);
    if at(19) {
        props.push(("description", Prop::Guarded(Field::Description)));
    }
    if at(52) {
        props.push(("tags", Prop::Other(Other::Tags)));
    }
    if at(63) {
        props.push((
            "trusted_image_certificates",
            Prop::Other(Other::TrustedCerts),
        ));
    }
    if at(74) {
        props.push(("host", Prop::Other(Other::Same(Field::HostnameFqdn))));
        props.push((
            "hypervisor_hostname",
            Prop::Other(Other::Same(Field::HostnameFqdn)),
        ));
    }
    if at(90) {
        let hostname = if at(94) {
            Field::HostnameFqdn
        } else {
            Field::HostnameLabel
        };
        props.push(("hostname", Prop::Guarded(hostname)));
    }
    let required: &[&str] = if at(37) {
        &["name", "flavorRef", "networks"]
    } else {
        &["name", "flavorRef"]
    };
    (props, required)
}

/// The properties of `rebuild` in Nova's rebuild schema for a request, in
/// the schema's order (`rebuild`, `rebuild_v20`, `rebuild_v219` …
/// `rebuild_v294`), and the keys it requires.
pub(super) fn rebuild_props(
    mode: Mode,
    version: Microversion,
) -> (Vec<(&'static str, Prop)>, &'static [&'static str]) {
    let legacy = mode == Mode::LegacyV2;
    let at = |minor: u16| !legacy && version >= Microversion::new(2, minor);
    let name = if legacy {
        Field::NameLegacy
    } else {
        Field::Name
    };
    let mut props = vec![
        ("name", Prop::Guarded(name)),
        ("imageRef", Prop::Other(Other::ImageId)),
        ("adminPass", Prop::Other(Other::AnyString)),
        ("metadata", Prop::Other(Other::Metadata)),
        ("preserve_ephemeral", Prop::Other(Other::Boolean)),
        ("OS-DCF:diskConfig", Prop::Guarded(Field::DiskConfig)),
        ("accessIPv4", Prop::Guarded(Field::Ipv4)),
        ("accessIPv6", Prop::Guarded(Field::Ipv6)),
    ];
    if !at(57) {
        props.push(("personality", Prop::Other(Other::EmptyArrayOnly)));
    }
    if at(19) {
        props.push(("description", Prop::Guarded(Field::Description)));
    }
    if at(54) {
        props.push(("key_name", Prop::Other(Other::Same(Field::NameOrNone))));
    }
    if at(57) {
        props.push(("user_data", Prop::Other(Other::UserData { nullable: true })));
    }
    if at(63) {
        props.push((
            "trusted_image_certificates",
            Prop::Other(Other::TrustedCerts),
        ));
    }
    if at(90) {
        let hostname = if at(94) {
            Field::HostnameFqdn
        } else {
            Field::HostnameLabel
        };
        props.push(("hostname", Prop::Guarded(hostname)));
    }
    (props, &["imageRef"])
}

// Checked when compiling: every update schema fits `MAX_PROPS`.
const _: () = {
    let all = [
        &UPDATE_V20,
        &UPDATE,
        &UPDATE_V219,
        &UPDATE_V290,
        &UPDATE_V294,
        &UPDATE_V2104,
    ];
    let mut i = 0;
    while i < all.len() {
        assert!(all[i].props.len() <= MAX_PROPS);
        i += 1;
    }
};

/// The schema Nova's `@validation.schema` decorators on
/// `ServersController.update` pick for a request. Before 2026.2 the last
/// one is `update_v294`, for 2.94 and every later version.
pub(super) fn select(release: Release, mode: Mode, version: Microversion) -> &'static Schema {
    match mode {
        Mode::LegacyV2 => &UPDATE_V20,
        Mode::V21 if version < Microversion::new(2, 19) => &UPDATE,
        Mode::V21 if version < Microversion::new(2, 90) => &UPDATE_V219,
        Mode::V21 if version < Microversion::new(2, 94) => &UPDATE_V290,
        Mode::V21 if version < Microversion::new(2, 104) || !release.has_update_v2104() => {
            &UPDATE_V294
        }
        Mode::V21 => &UPDATE_V2104,
    }
}

/// Keys that legacy v2 would silently keep or drop but nova-guard refuses
/// there (they belong to later microversions).
pub(super) const LEGACY_REFUSED: [&str; 3] =
    ["description", "hostname", "pinned_availability_zone"];
