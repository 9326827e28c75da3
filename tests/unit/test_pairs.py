"""Allowed-address-pair validation: reference §2.2 checks 1-10, first failure wins."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portsec import faults
from portsec.domain import errors
from portsec.domain.model import AllowedPair
from portsec.domain.pairs import validate_pairs, with_port_mac

CASES = [
    ({"ip_address": "10.0.0.1"}, "HTTPBadRequest", "Allowed address pairs must be a list."),
    ([{"ip_address": f"10.0.0.{i}"} for i in range(11)], "AllowedAddressPairExhausted",
     "The number of allowed address pair exceeds the maximum 10."),
    (["10.0.0.1"], "HTTPBadRequest", "Invalid input for allowed_address_pairs. Reason: '10.0.0.1' is not a dictionary."),
    ([{"ip_address": "10.0.0.1", "mac_address": "zz"}], "HTTPBadRequest", "'zz' is not a valid MAC address"),
    ([{"mac_address": "fa:16:3e:00:00:01"}], "AllowedAddressPairsMissingIP", "AllowedAddressPair must contain ip_address"),
    ([{"ip_address": "10.0.0.1"}, {"ip_address": "10.0.0.1"}], "DuplicateAddressPairInRequest",
     "Request contains duplicate address pair: mac_address None ip_address 10.0.0.1."),
    ([{"ip_address": "10.0.0.1", "foo": 1}], "HTTPBadRequest", "Unrecognized attribute(s) 'foo'"),
    ([{"ip_address": "10.0.0.1222"}], "HTTPBadRequest", "'10.0.0.1222' is not a valid IP address"),
    ([{"ip_address": "224.0.0.0/8"}], "HTTPBadRequest",
     "Subnet 224.0.0.0/8 overlaps with multicast range 224.0.0.0/4, which is not supported."),
    ([{"ip_address": "10.0.0.1", "mac_address": "01:00:5e:00:00:64"}], "HTTPBadRequest",
     "MAC address 01:00:5e:00:00:64 is a multicast address, which is not supported."),
    # order: the bad MAC (check 4) is reported before the missing IP (check 5)
    ([{"mac_address": "zz"}], "HTTPBadRequest", "'zz' is not a valid MAC address"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "kind", "message"), CASES)
def test_each_check_gives_neutrons_type_message_and_400(data, kind, message):
    with pytest.raises(errors.NeutronError) as caught:
        validate_pairs(data)
    assert (caught.value.type, caught.value.msg, faults.status_of(caught.value)) == (kind, message, 400)


def test_exactly_the_maximum_is_fine_and_the_maximum_is_configurable():
    ten = [{"ip_address": f"10.0.0.{i}"} for i in range(10)]
    assert validate_pairs(ten) == ten
    with pytest.raises(errors.AllowedAddressPairExhausted, match="maximum 3"):
        validate_pairs(ten[:4], max_pairs=3)


def test_missing_mac_becomes_the_port_mac_and_may_then_collide():
    pairs = with_port_mac(
        [{"ip_address": "10.0.0.1"}, {"ip_address": "10.0.0.2", "mac_address": "FA:16:3E:00:00:02"}],
        "fa:16:3e:00:00:01",
    )
    assert pairs == (AllowedPair("fa:16:3e:00:00:01", "10.0.0.1"), AllowedPair("FA:16:3E:00:00:02", "10.0.0.2"))
    with pytest.raises(errors.DuplicateAddressPairInRequest, match="mac_address fa:16:3e:00:00:01 ip_address 10.0.0.1"):
        with_port_mac(
            [{"ip_address": "10.0.0.1"}, {"ip_address": "10.0.0.1", "mac_address": "fa:16:3e:00:00:01"}],
            "fa:16:3e:00:00:01",
        )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["ip_address", "mac_address", "x"]), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(json_values)
def test_any_json_is_accepted_or_refused_with_a_400(data):
    """Whatever a client sends, validation either passes or answers 400: never a crash."""
    try:
        validate_pairs(data)
    except errors.NeutronError as err:
        assert faults.status_of(err) == 400
    except (TypeError, ValueError) as err:  # pragma: no cover - the assertion is the point
        pytest.fail(f"{data!r} crashed validation: {err!r}")


@pytest.mark.parametrize("ip", [["10.0.0.1"], {"a": 1}, 5, None])
def test_a_non_string_ip_is_a_400_not_a_crash(ip):
    """Found by the API fuzz test: a list as ip_address once crashed the duplicate check."""
    with pytest.raises(errors.BadRequest):  # the duplicate, or the address itself
        validate_pairs([{"ip_address": ip}, {"ip_address": ip}])
    with pytest.raises(errors.HTTPBadRequest, match="is not a valid IP address"):
        validate_pairs([{"ip_address": ip}])
