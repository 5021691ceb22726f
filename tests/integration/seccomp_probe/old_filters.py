"""The filters as shipped before the allow-list (commit 7f6e271, collection 0.1): the "old" side of the attack tests.

`compile_policy(arch)` produced these programs then (hardened profile, deny_families [AF_PACKET, AF_NETLINK],
no netlink protocol allowed, io_uring denied, nothing else). They are kept as data, instruction by instruction,
so the attack tests keep proving that they fail against the old behaviour.
"""
OLD_HARDENED = {
    # sha256 of the raw bytes: e05abeb7191439d2a0793b0c305591957b40c5587bb125c7c7f4a9330159a7f8
    "x86_64": [(32, 0, 0, 4), (21, 0, 18, 3221225534), (32, 0, 0, 0), (53, 13, 0, 1073741824), (53, 0, 13, 41),
               (37, 2, 0, 53), (21, 3, 0, 41), (21, 2, 10, 53), (53, 0, 9, 425), (37, 8, 9, 427), (32, 0, 0, 16),
               (21, 7, 0, 17), (21, 6, 0, 16), (21, 0, 4, 2), (32, 0, 0, 24), (84, 0, 0, 15), (21, 2, 1, 10),
               (21, 0, 2, 4294967295), (6, 0, 0, 2147418112), (6, 0, 0, 327681), (6, 0, 0, 2147483648)],
    # sha256: e21eb8f04644a45eb5fa9f9545f3d40ab2357d391413b8589ead82251a6500dc
    "aarch64": [(32, 0, 0, 4), (21, 0, 16, 3221225655), (32, 0, 0, 0), (53, 0, 12, 198), (37, 2, 0, 199),
                (21, 3, 0, 198), (21, 2, 9, 199), (53, 0, 8, 425), (37, 7, 8, 427), (32, 0, 0, 16), (21, 6, 0, 17),
                (21, 5, 0, 16), (21, 0, 3, 2), (32, 0, 0, 24), (84, 0, 0, 15), (21, 1, 0, 10), (6, 0, 0, 2147418112),
                (6, 0, 0, 327681), (6, 0, 0, 2147483648)],
}
OLD_SHA256 = {"x86_64": "e05abeb7191439d2a0793b0c305591957b40c5587bb125c7c7f4a9330159a7f8",
              "aarch64": "e21eb8f04644a45eb5fa9f9545f3d40ab2357d391413b8589ead82251a6500dc"}
OLD_COMMIT = "7f6e271"
