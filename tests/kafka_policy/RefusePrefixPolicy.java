// A CreateTopicPolicy refusing every topic whose name starts with the broker setting
// pygoka.test.refused.prefix: tests see how pygoka reports a broker that refuses topic creation.
import java.util.Map;

import org.apache.kafka.common.errors.PolicyViolationException;
import org.apache.kafka.server.policy.CreateTopicPolicy;

public class RefusePrefixPolicy implements CreateTopicPolicy {
    private String prefix = "refused-";

    @Override
    public void configure(Map<String, ?> configs) {
        Object value = configs.get("pygoka.test.refused.prefix");
        if (value != null) {
            prefix = value.toString();
        }
    }

    @Override
    public void validate(RequestMetadata request) throws PolicyViolationException {
        if (request.topic().startsWith(prefix)) {
            throw new PolicyViolationException("topics named " + prefix + "* are not created here");
        }
    }

    @Override
    public void close() {
    }
}
