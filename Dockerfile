# Placeholder: the container image (multi-stage, FROM scratch, nft + iptables-legacy) is built by a later issue.
FROM scratch
